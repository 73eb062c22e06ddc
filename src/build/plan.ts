/**
 * Pure scheduling of concurrent per-kernel builds. DKMS gives each make
 * -j$(nproc) and builds kernels one after another; kbundle runs kernels side
 * by side and splits the job budget so the machine is busy but not
 * oversubscribed (stacked -j$(nproc) runs out of file descriptors on big
 * modules; docs/dkms-compat.md, "Concurrency").
 */
export interface BuildSchedule {
  /** How many kernels build at once. */
  concurrency: number;
  /** -j for each make. */
  jobsPerMake: number;
}

export function scheduleBuilds(targets: number, jobs: number): BuildSchedule {
  if (targets <= 0) return { concurrency: 0, jobsPerMake: Math.max(1, jobs) };
  if (jobs === 0) return { concurrency: targets, jobsPerMake: 0 }; // -j0: unlimited, as dkms
  const concurrency = Math.max(1, Math.min(targets, jobs * 2));
  return { concurrency, jobsPerMake: Math.max(1, Math.floor(jobs / concurrency)) };
}

/** Run tasks with at most `limit` in flight; results keep input order. */
export async function runPool<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
