import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { KbundleError } from '../../util/errors.js';
import { checkDigested, type Digested } from '../model/digest.js';
import { ExitCode } from '../../util/exit-codes.js';

const require = createRequire(import.meta.url);
const WORKER_FILE = new URL('./unzstd-worker.cjs', import.meta.url);

/** Output buffers handed over at a time, and their size: 4 MiB in flight at most. */
const BUFFERS = 4;
const BUF_SIZE = 1 << 20;

/**
 * Decompresses the zstd bytes at [at, at+size) of `file` on a worker thread
 * and calls `onPiece` with the output, in order, on this one (a view valid
 * only during the call). Unpacking a source is decompression plus writing
 * files; on one thread they serialise, here the writing overlaps with the
 * decompressing and the hashing of its output (docs/performance.md).
 *
 * Resolves once the output matched `expected` (the signed uncompressed
 * digest and size); the output stops at `expected.size` bytes (bomb guard).
 * Errors read as ZstdDecoder's. An `onPiece` error stops the worker and
 * rejects with that error.
 */
export function unzstdRange(file: string, at: number, size: number, expected: Digested, what: string, onPiece: (piece: Buffer) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_FILE, {
      workerData: { zstdBinding: require.resolve('zstd-napi/binding'), file, at, size, limit: expected.size, bufSize: BUF_SIZE, buffers: BUFFERS },
    });
    let settled = false;
    const finish = (e: unknown) => {
      if (settled) return;
      settled = true;
      worker.removeAllListeners();
      worker.on('error', () => undefined);
      // Stopped either way: after its last message it has nothing left to do, and a live thread would keep the process running.
      void worker.terminate();
      if (e === null) resolve();
      else reject(e);
    };
    type Msg =
      | { op: 'data'; buf: ArrayBuffer; length: number }
      | { op: 'end'; hex: string; size: number; inFrame: boolean }
      | { op: 'error'; message: string; kind?: 'zstd' | 'limit'; code?: string };
    worker.on('message', (m: Msg) => {
      if (settled) return;
      try {
        if (m.op === 'data') {
          onPiece(Buffer.from(m.buf, 0, m.length));
          worker.postMessage({ buf: m.buf }, [m.buf]);
        } else if (m.op === 'end') {
          if (m.inFrame) throw new KbundleError(`${what}: not valid zstd data (Stream ended in middle of compressed data frame)`, ExitCode.DigestMismatch);
          checkDigested({ digest: `sha256:${m.hex}`, size: m.size }, expected, `${what} (uncompressed)`);
          finish(null);
        } else if (m.kind === 'zstd') throw new KbundleError(`${what}: not valid zstd data (${m.message})`, ExitCode.DigestMismatch);
        else if (m.kind === 'limit') throw new KbundleError(`${what}: decompressed output exceeds the declared ${expected.size} bytes`, ExitCode.LimitExceeded);
        else throw Object.assign(new Error(m.message), m.code ? { code: m.code } : {});
      } catch (e) {
        finish(e);
      }
    });
    worker.on('error', (e) => finish(e));
    worker.on('exit', (code) => finish(new Error(`zstd decompression thread exited (${code}) before the end of ${what}`)));
  });
}
