import { closeSync, openSync, renameSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { PartFile, tempPathFor } from '../../util/atomic.js';
import { KbundleError } from '../../util/errors.js';
import { parseArchive } from '../../tar/walk.js';
import { Verifier, checkDigested, hexOf, type Digested } from '../model/digest.js';
import { rangeThread, workerMinBytes } from './range-thread.js';
import { describeTarError, TarFormatError, type TarSink } from '../../tar/parse.js';
import { ExitCode } from '../../util/exit-codes.js';

// The range loop the reader thread runs too (range-read.cjs: one copy, loaded by both).
const { RangeReader } = createRequire(import.meta.url)('./range-read.cjs') as typeof import('./range-read.cjs');

/**
 * One blob's bytes in pieces, verified against `expected` as they go (the
 * file may have changed since it was scanned): the last step throws unless
 * exactly the expected bytes came. A piece is valid until the next is asked
 * for (it may be a view of one reused buffer). With `offset` (the scan's)
 * the bytes are read synchronously from there, `chunkSize` at a time, with a
 * turn of the event loop every 16 MiB so timers and other threads' messages
 * are not held up; otherwise the archive is parsed up to the blob.
 */
export async function* blobChunks(file: string, expected: Digested, offset?: number, chunkSize = 64 << 10): AsyncGenerator<Buffer> {
  const verifier = new Verifier(expected, `${file}: blob ${expected.digest}`);
  for await (const piece of offset === undefined ? parsedBlob(file, expected) : blobAt(file, offset, expected.size, chunkSize)) {
    verifier.update(piece);
    yield piece;
  }
  verifier.finish();
}

/** blobChunks as a stream (each piece copied: a stream holds on to what it is given). */
export function readBlobFromArchive(file: string, expected: Digested, offset?: number, chunkSize = 1 << 20): Readable {
  return Readable.from(
    (async function* () {
      for await (const piece of blobChunks(file, expected, offset, chunkSize)) yield Buffer.from(piece);
    })(),
    { objectMode: false },
  );
}

async function* blobAt(file: string, offset: number, size: number, chunkSize: number): AsyncGenerator<Buffer> {
  const fd = openSync(file, 'r');
  try {
    const reader = new RangeReader(fd, offset, size, Buffer.allocUnsafeSlow(chunkSize));
    for (let piece, sinceTurn = 0; (piece = reader.next()) !== null; ) {
      sinceTurn += piece.length;
      if (sinceTurn >= 16 << 20) {
        sinceTurn = 0;
        await new Promise((r) => setImmediate(r));
      }
      yield piece;
    }
  } finally {
    closeSync(fd);
  }
}

/** The blob's entry, found by parsing the archive from the start (for blobs the header walk did not reach). */
async function* parsedBlob(file: string, expected: Digested): AsyncGenerator<Buffer> {
  const wanted = `blobs/sha256/${hexOf(expected.digest)}`;
  // Pieces of the wanted entry gathered while a chunk is parsed, handed on after it.
  const progress = { state: 'before' as 'before' | 'in' | 'done' };
  let pieces: Buffer[] = [];
  const sink: TarSink = {
    entry: (h) => {
      if (progress.state === 'before' && h.name === wanted) progress.state = 'in';
    },
    data: (piece) => {
      if (progress.state === 'in') pieces.push(Buffer.from(piece));
    },
    end: () => {
      if (progress.state === 'in') progress.state = 'done';
    },
  };
  try {
    for await (const _ of parseArchive(file, sink)) {
      yield* pieces;
      pieces = [];
      if (progress.state === 'done') return;
    }
  } catch (e) {
    throw bad(file, e);
  }
  throw new KbundleError(`${file}: blob ${expected.digest} is not in the archive`, ExitCode.BadLayout);
}

/**
 * Copies the wanted blobs to `dir/<hex>`, each verified and renamed into
 * place only when complete: those with a known offset read from there, the
 * rest in one pass over the archive.
 */
export async function copyBlobsFromArchive(file: string, wanted: Map<string, number>, dir: string, offsets: Map<string, number> = new Map()): Promise<void> {
  await mkdir(dir, { recursive: true });
  const byName = new Map<string, Digested>();
  const located: (Digested & { at: number; final: string })[] = [];
  for (const [digest, size] of wanted) {
    const at = offsets.get(digest);
    if (at === undefined) byName.set(`blobs/sha256/${hexOf(digest)}`, { digest, size });
    else located.push({ digest, size, at, final: join(dir, hexOf(digest)) });
  }
  if (located.length > 0 && located.reduce((n, b) => n + b.size, 0) >= workerMinBytes()) await copyRangesElsewhere(file, located);
  else for (const b of located) await writeVerified(b.final, blobChunks(file, b, b.at, 1 << 20));
  if (byName.size === 0) return;
  // The rest in one pass over the archive, each wanted entry verified on its way into place.
  const got = new Set<string>();
  let cur: { exp: Digested; out: PartFile; verifier: Verifier } | null = null;
  const sink: TarSink = {
    entry: (h) => {
      const exp = byName.get(h.name);
      if (!exp || got.has(exp.digest)) return;
      cur = { exp, out: new PartFile(join(dir, hexOf(exp.digest)), false), verifier: new Verifier(exp, `${file}: blob ${exp.digest}`) };
    },
    data: (piece) => {
      cur?.verifier.update(piece);
      cur?.out.write(piece);
    },
    end: () => {
      if (!cur) return;
      const c = cur;
      cur = null;
      try {
        c.verifier.finish();
      } catch (e) {
        c.out.abort();
        throw e;
      }
      c.out.commit();
      got.add(c.exp.digest);
    },
  };
  try {
    for await (const _ of parseArchive(file, sink)) if (got.size === byName.size) break;
  } catch (e) {
    (cur as { out: PartFile } | null)?.out.abort();
    throw bad(file, e);
  }
  for (const d of byName.values()) if (!got.has(d.digest)) throw new KbundleError(`${file}: blob ${d.digest} is not in the archive`, ExitCode.BadLayout);
}

/**
 * Writes verified pieces (blobChunks) to `final` through a temp name,
 * renamed only once the last piece passed. Synchronous writes: a read
 * stream, a verifying transform and a write stream cost ~2.5 s for 475 MB
 * of modules on tmpfs, mostly waiting on thread-pool round trips.
 */
async function writeVerified(final: string, pieces: AsyncIterable<Buffer>): Promise<void> {
  // Blobs land in a private staging dir that is made durable when it is published (commitStagedDir).
  const out = new PartFile(final, false);
  try {
    for await (const piece of pieces) out.write(piece);
  } catch (e) {
    out.abort();
    throw e;
  }
  out.commit();
}

/**
 * writeVerified for many blobs on the reader thread, leaving this one
 * free (to unpack the source meanwhile): the thread copies each range into
 * a temp name beside `<final>`; each copy is renamed into place only once all of them
 * hashed to what the index declares, and removed otherwise.
 */
async function copyRangesElsewhere(file: string, blobs: (Digested & { at: number; final: string })[]): Promise<void> {
  const parts = blobs.map((b) => tempPathFor(b.final));
  for (const p of parts) rmSync(p, { force: true });
  try {
    const got = await rangeThread().copy(
      file,
      blobs.map((b, i) => ({ at: b.at, size: b.size, to: parts[i]! })),
    );
    blobs.forEach((b, i) => checkDigested(got[i]!, b, `${file}: blob ${b.digest}`));
  } catch (e) {
    for (const p of parts) rmSync(p, { force: true });
    throw e;
  }
  blobs.forEach((b, i) => renameSync(parts[i]!, b.final));
}

/** A tar format problem as this archive's error (exit 32); others unchanged. */
function bad(file: string, e: unknown): unknown {
  return e instanceof TarFormatError ? new KbundleError(`${file}: ${describeTarError(e)}`, ExitCode.UnsafeArchive) : e;
}
