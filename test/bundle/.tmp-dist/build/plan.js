export function scheduleBuilds(targets, jobs) {
    if (targets <= 0)
        return { concurrency: 0, jobsPerMake: Math.max(1, jobs) };
    if (jobs === 0)
        return { concurrency: targets, jobsPerMake: 0 }; // -j0: unlimited, as dkms
    const concurrency = Math.max(1, Math.min(targets, jobs));
    return { concurrency, jobsPerMake: Math.max(1, Math.floor(jobs / concurrency)) };
}
/** Run tasks with at most `limit` in flight; results keep input order. */
export async function runPool(items, limit, fn) {
    const results = new Array(items.length);
    let next = 0;
    const worker = async () => {
        while (next < items.length) {
            const i = next++;
            results[i] = await fn(items[i], i);
        }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
    return results;
}
