import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { isTransferable, recycle } from './chunker.js';
import type { Digested } from '../model/digest.js';

/**
 * A second thread for the packer's longest single-core job: zstd over the
 * source tar. On the main thread it serialised with all the reading,
 * hashing and writing (profile of a 743 MB input: ~2.2 s of zstd in ~9 s,
 * docs/performance.md); here it overlaps with them. Several jobs (one per
 * package source) may share the worker.
 *
 * Chunks are handed over by transferring their memory, not copying it, and
 * at most MAX_IN_FLIGHT per job wait at the worker, which bounds the memory
 * in flight.
 */
const MAX_IN_FLIGHT = 4;
const require = createRequire(import.meta.url);
const WORKER_FILE = new URL('./zstd-worker.cjs', import.meta.url);

type Reply = { op: 'ack'; id: number; buf: ArrayBuffer } | { op: 'done'; id: number; digest: string; size: number } | { op: 'error'; id: number; message: string; code?: string };

interface JobState {
  inFlight: number;
  waiters: (() => void)[];
  done: ((d: Digested) => void) | null;
  failed: ((e: Error) => void) | null;
}

export class ZstdWorker {
  private readonly worker: Worker;
  private readonly jobs = new Map<number, JobState>();
  private nextId = 0;
  private failure: Error | null = null;

  private constructor() {
    this.worker = new Worker(WORKER_FILE, { workerData: { zstdBinding: require.resolve('zstd-napi/binding') } });
    this.worker.on('message', (m: Reply) => this.receive(m));
    this.worker.on('error', (e) => this.fail(e));
    this.worker.on('exit', (code) => this.fail(new Error(`zstd worker exited (${code})`)));
  }

  static start(): ZstdWorker {
    return new ZstdWorker();
  }

  /** zstd-compresses what is written into `file` (created, must not exist); ends with the compressed digest and size. */
  compressTo(file: string, level: number): CompressJob {
    return this.begin({ file, level });
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }

  private begin(params: object): CompressJob {
    const id = this.nextId++;
    const job: JobState = { inFlight: 0, waiters: [], done: null, failed: null };
    this.jobs.set(id, job);
    this.worker.postMessage({ op: 'begin', id, ...params });
    return {
      write: (chunk) => this.write(id, job, chunk),
      end: () => this.end(id, job),
    };
  }

  private async write(id: number, job: JobState, chunk: Buffer): Promise<void> {
    this.check();
    // A Chunker's chunk is moved to the worker; anything else is copied first, as its memory may be shared.
    const own = isTransferable(chunk) ? chunk : copyToOwnBuffer(chunk);
    job.inFlight++;
    this.worker.postMessage({ op: 'chunk', id, buf: own.buffer, length: own.length }, [own.buffer as ArrayBuffer]);
    while (job.inFlight >= MAX_IN_FLIGHT) {
      await new Promise<void>((resolve) => job.waiters.push(resolve));
      this.check();
    }
  }

  private end(id: number, job: JobState): Promise<Digested> {
    this.check();
    return new Promise<Digested>((resolve, reject) => {
      job.done = resolve;
      job.failed = reject;
      this.worker.postMessage({ op: 'end', id });
    });
  }

  private receive(m: Reply): void {
    const job = this.jobs.get(m.id);
    if (m.op === 'ack') {
      recycle(m.buf);
      if (!job) return;
      job.inFlight--;
      wake(job);
    } else if (m.op === 'done') {
      this.jobs.delete(m.id);
      job?.done?.({ digest: m.digest, size: m.size });
    } else {
      // Rebuilt with its code, so a full disk reads the same as one hit on the main thread.
      this.fail(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}));
    }
  }

  /** The worker failing fails every job: a bundle is written whole or not at all. */
  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    for (const job of this.jobs.values()) {
      job.failed?.(e);
      wake(job);
    }
    this.jobs.clear();
  }

  private check(): void {
    if (this.failure) throw this.failure;
  }
}

export interface CompressJob {
  /** Hands `chunk` to the worker; resolves once fewer than MAX_IN_FLIGHT of this job's chunks wait there. A Chunker's chunk is transferred: do not use it afterwards. */
  write(chunk: Buffer): Promise<void>;
  end(): Promise<Digested>;
}

function wake(job: JobState): void {
  const w = job.waiters;
  job.waiters = [];
  for (const f of w) f();
}

function copyToOwnBuffer(chunk: Buffer): Buffer {
  const b = Buffer.allocUnsafeSlow(chunk.length);
  chunk.copy(b);
  return b;
}
