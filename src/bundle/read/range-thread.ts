import { Worker } from 'node:worker_threads';
import type { Digested } from '../model/digest.js';

/**
 * A second thread for reading a bundle: hashing blobs during the verifying
 * scan, copying module blobs out while the main thread unpacks the source.
 * On one thread those serialise (docs/performance.md, unpack); here they use
 * the second core. The worker only reads, hashes and writes; every check of
 * what it answers stays with the caller.
 *
 * One worker per process, started on first use and unref'd while idle, so
 * it never keeps the process alive; jobs run in the order posted.
 */
const WORKER_FILE = new URL('./range-worker.cjs', import.meta.url);

export interface Range {
  at: number;
  size: number;
}

interface Pending {
  resolve: (r: Digested[]) => void;
  reject: (e: Error) => void;
}

type Reply = { id: number; ok: true; results: { hex: string; size: number }[] } | { id: number; ok: false; message: string; code?: string };

class RangeThread {
  private readonly worker = new Worker(WORKER_FILE);
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;

  constructor(private readonly onDead: () => void) {
    this.worker.unref();
    this.worker.on('message', (m: Reply) => this.receive(m));
    this.worker.on('error', (e) => this.die(e));
    this.worker.on('exit', (code) => this.die(new Error(`bundle reader thread exited (${code})`)));
  }

  /** sha256 and length of each range of `file` (a range past the end comes back short). */
  hash(file: string, ranges: Range[]): Promise<Digested[]> {
    return this.post({ op: 'hash', file, ranges });
  }

  /** Copies each range of `file` into a new file `to` (must not exist); answers what each copy holds. */
  copy(file: string, ranges: (Range & { to: string })[]): Promise<Digested[]> {
    return this.post({ op: 'copy', file, ranges });
  }

  private post(job: object): Promise<Digested[]> {
    const id = this.nextId++;
    if (this.pending.size === 0) this.worker.ref();
    this.worker.postMessage({ id, ...job });
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  private receive(m: Reply): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (this.pending.size === 0) this.worker.unref();
    // Rebuilt with its errno code, so ENOSPC or EEXIST reads the same as on the main thread.
    if (m.ok) p.resolve(m.results.map((r) => ({ digest: `sha256:${r.hex}`, size: r.size })));
    else p.reject(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}));
  }

  private die(e: Error): void {
    this.onDead();
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }
}

let shared: RangeThread | null = null;

/** The process's reader thread, started on first use. */
export function rangeThread(): RangeThread {
  return (shared ??= new RangeThread(() => {
    shared = null;
  }));
}

/**
 * Below this many bytes a job stays on the calling thread: starting a
 * worker (~30 ms, measured) would cost more than it saves. The environment
 * variable KBUNDLE_WORKER_MIN_BYTES overrides it (the tests set 0 to run
 * the threaded paths on small bundles).
 */
let minBytes = parseMinBytes(process.env.KBUNDLE_WORKER_MIN_BYTES) ?? 32 << 20;
export const workerMinBytes = (): number => minBytes;
export function setWorkerMinBytes(bytes: number): void {
  minBytes = bytes;
}

function parseMinBytes(v: string | undefined): number | null {
  return v !== undefined && /^[0-9]+$/.test(v) ? Number(v) : null;
}
