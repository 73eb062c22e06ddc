import { closeSync, createReadStream, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, pipeline as pipelineCb } from 'node:stream';
import { KbundleError } from '../util/errors.js';
import { parseArchive, walkArchive } from './archive-walk.js';
import { Verifier, VerifyingStream, checkDigested, hexOf, type Digested } from './digest.js';
import { BundleExit } from './exit-codes.js';
import { rangeThread, workerMinBytes } from './range-thread.js';
import { BLOB_RE } from './scan.js';
import { checkEntryName } from './tar-paths.js';
import { describeTarError, TarFormatError, TarParser, type TarSink } from './tar-parse.js';

/**
 * Where each blob's bytes start in the archive, from the header walk alone
 * (archive-walk.ts), so a blob can be read straight from its offset instead
 * of by parsing the archive up to it. Every read from an offset is still
 * verified against the blob's digest and size, so a wrong offset can only
 * fail a read, never pass wrong bytes. Blobs past a header the walk does not
 * follow (GNU long names) are read by the streaming path instead.
 */
export function locateBlobs(file: string): Map<string, number> {
  const at = new Map<string, number>();
  for (const e of walkArchive(file).entries) {
    const checked = checkEntryName(e.name);
    const blob = 'path' in checked && e.type === 'file' ? BLOB_RE.exec(checked.path) : null;
    if (blob && !at.has(`sha256:${blob[1]}`)) at.set(`sha256:${blob[1]}`, e.dataAt);
  }
  return at;
}

/**
 * Streams one blob out of the archive, re-verified against `expected` as it
 * goes (the file may have changed since it was scanned). The consumer sees
 * an error instead of end-of-stream if size or digest differ. With `offset`
 * (locateBlobs) the blob is read from there, in `chunkSize` reads;
 * otherwise the archive is parsed up to it.
 */
export function readBlobFromArchive(file: string, expected: Digested, offset?: number, chunkSize = 1 << 20): Readable {
  if (offset !== undefined) {
    const bytes = expected.size === 0 ? Readable.from([]) : createReadStream(file, { start: offset, end: offset + expected.size - 1, highWaterMark: chunkSize });
    return pipelineCb(bytes, new VerifyingStream(expected, `${file}: blob ${expected.digest}`), () => undefined);
  }
  const wanted = `blobs/sha256/${hexOf(expected.digest)}`;
  const source = Readable.from(
    (async function* () {
      // Pieces of the wanted entry gathered while the reader parses a chunk, handed on after it.
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
      const parser = new TarParser(sink);
      for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
        try {
          parser.feed(chunk);
        } catch (e) {
          throw bad(file, e);
        }
        yield* pieces;
        pieces = [];
        if (progress.state === 'done') return;
      }
      if (progress.state === 'in') throw bad(file, new TarFormatError('Unexpected end of data'));
      throw new KbundleError(`${file}: blob ${expected.digest} is not in the archive`, BundleExit.BadLayout);
    })(),
    { objectMode: false },
  );
  return pipelineCb(source, new VerifyingStream(expected, `${file}: blob ${expected.digest}`), () => undefined);
}

/**
 * One blob's bytes in `chunkSize` pieces (views of one reused buffer: use
 * each before asking for the next), verified like readBlobFromArchive: the
 * last step throws unless exactly the expected bytes came. With `offset`
 * they are read synchronously from there, with a turn of the event loop
 * every 16 MiB so timers and other threads' messages are not held up.
 */
export async function* blobChunks(file: string, expected: Digested, offset?: number, chunkSize = 64 << 10): AsyncGenerator<Buffer> {
  if (offset === undefined) {
    yield* readBlobFromArchive(file, expected, undefined, chunkSize) as AsyncIterable<Buffer>;
    return;
  }
  const verifier = new Verifier(expected, `${file}: blob ${expected.digest}`);
  const buf = Buffer.allocUnsafeSlow(chunkSize);
  const fd = openSync(file, 'r');
  try {
    for (let done = 0, sinceTurn = 0; done < expected.size; ) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, expected.size - done), offset + done);
      if (n === 0) break;
      const piece = buf.subarray(0, n);
      verifier.update(piece);
      done += n;
      sinceTurn += n;
      if (sinceTurn >= 16 << 20) {
        sinceTurn = 0;
        await new Promise((r) => setImmediate(r));
      }
      yield piece;
    }
  } finally {
    closeSync(fd);
  }
  verifier.finish();
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
  else for (const b of located) copyRangeVerified(file, b.at, b, b.final);
  if (byName.size === 0) return;
  // The rest in one pass over the archive: each wanted entry into `<hex>.part`, verified, renamed.
  const got = new Set<string>();
  let cur: { exp: Digested; part: string; fd: number; verifier: Verifier } | null = null;
  const closeCurrent = () => {
    if (cur) closeSync(cur.fd);
  };
  const sink: TarSink = {
    entry: (h) => {
      const exp = byName.get(h.name);
      if (!exp || got.has(exp.digest)) return;
      const part = join(dir, hexOf(exp.digest)) + '.part';
      cur = { exp, part, fd: openSync(part, 'w'), verifier: new Verifier(exp, `${file}: blob ${exp.digest}`) };
    },
    data: (piece) => {
      if (!cur) return;
      cur.verifier.update(piece);
      for (let off = 0; off < piece.length; ) off += writeSync(cur.fd, piece, off, piece.length - off);
    },
    end: () => {
      if (!cur) return;
      const c = cur;
      closeCurrent();
      cur = null;
      try {
        c.verifier.finish();
      } catch (e) {
        rmSync(c.part, { force: true });
        throw e;
      }
      renameSync(c.part, join(dir, hexOf(c.exp.digest)));
      got.add(c.exp.digest);
    },
  };
  try {
    await parseArchive(file, sink, () => got.size === byName.size);
  } catch (e) {
    if (cur) {
      closeCurrent();
      rmSync((cur as { part: string }).part, { force: true });
    }
    throw bad(file, e);
  }
  for (const d of byName.values()) if (!got.has(d.digest)) throw new KbundleError(`${file}: blob ${d.digest} is not in the archive`, BundleExit.BadLayout);
}

/**
 * Copies `expected.size` bytes at `at` in `file` to `final` through
 * `final.part`, verified, renamed only when complete. Synchronous reads and
 * writes through one buffer: a read stream, a verifying transform and a
 * write stream cost ~2.5 s for 475 MB of modules on tmpfs, mostly waiting on
 * thread-pool round trips and collecting a fresh buffer per chunk.
 */
function copyRangeVerified(file: string, at: number, expected: Digested, final: string): void {
  const part = final + '.part';
  const verifier = new Verifier(expected, `${file}: blob ${expected.digest}`);
  const buf = Buffer.allocUnsafeSlow(Math.min(1 << 20, Math.max(expected.size, 1)));
  const src = openSync(file, 'r');
  try {
    const dst = openSync(part, 'w');
    try {
      for (let done = 0; done < expected.size; ) {
        const n = readSync(src, buf, 0, Math.min(buf.length, expected.size - done), at + done);
        if (n === 0) break;
        const piece = buf.subarray(0, n);
        verifier.update(piece);
        for (let off = 0; off < n; ) off += writeSync(dst, piece, off, n - off);
        done += n;
      }
      verifier.finish();
    } finally {
      closeSync(dst);
    }
  } catch (e) {
    rmSync(part, { force: true });
    throw e;
  } finally {
    closeSync(src);
  }
  renameSync(part, final);
}

/**
 * copyRangeVerified for many blobs on the reader thread, leaving this one
 * free (to unpack the source meanwhile): the thread copies each range into
 * `<final>.part`; each copy is renamed into place only once all of them
 * hashed to what the index declares, and removed otherwise.
 */
async function copyRangesElsewhere(file: string, blobs: (Digested & { at: number; final: string })[]): Promise<void> {
  const parts = blobs.map((b) => b.final + '.part');
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
  return e instanceof TarFormatError ? new KbundleError(`${file}: ${describeTarError(e)}`, BundleExit.UnsafeArchive) : e;
}
