import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { mkdirDurable, PartFile } from '../../util/atomic.js';
import { KbundleError } from '../../util/errors.js';
import type { OpenBundle, VerifiedContents } from './open.js';
import { streamingScanner, type Scanned } from './scan.js';
import { describeTarError, TarFormatError, TarParser } from '../../tar/parse.js';
import { ExitCode } from '../../util/exit-codes.js';

/**
 * Copies a verified bundle's file to `dest` (for keeping it, as the
 * installer does), refusing unless the copy holds exactly what openBundle
 * verified. The file is the user's and may have changed since it was
 * verified, so copying it blindly would keep bytes nobody checked. The bytes
 * are scanned as they are copied (one read: every blob hashed against its
 * name, the layout checked as openBundle checks it), then the copy's blobs,
 * index.json and oci-layout must equal the verified ones. Written as a
 * PartFile (atomic.ts: temp name, fsync, rename, directory fsync) committed
 * only when all of that held, so `dest` either does not appear or is
 * complete and verified.
 *
 * Exit 31 when the file now holds other content, 32 when it is no longer a
 * readable layout (truncated, extra entries), as openBundle would say.
 */
export async function copyVerified(bundle: OpenBundle, dest: string): Promise<{ size: number }> {
  const src = bundle.index.file;
  await mkdirDurable(dirname(dest));
  const scanner = streamingScanner(src, bundle.verified.limits);
  const parser = new TarParser(scanner.sink);
  let inFd = -1;
  let out: PartFile | null = null;
  let size = 0;
  try {
    try {
      inFd = openSync(src, 'r');
    } catch (e) {
      throw new KbundleError(`${src}: cannot be read as a bundle (${(e as Error).message})`, ExitCode.UnsafeArchive);
    }
    out = new PartFile(dest);
    const outFd = out.fd;
    const buf = Buffer.allocUnsafeSlow(1 << 20);
    for (let sinceTurn = 0; ; ) {
      const n = readSync(inFd, buf, 0, buf.length, size);
      if (n === 0) break;
      const piece = buf.subarray(0, n);
      for (let off = 0; off < n; ) off += writeSync(outFd, piece, off, n - off);
      parser.feed(piece);
      size += n;
      sinceTurn += n;
      // Synchronous reads and writes, as the blob copies do; a turn now and then keeps timers and other threads' messages moving.
      if (sinceTurn >= 16 << 20) {
        sinceTurn = 0;
        await new Promise((r) => setImmediate(r));
      }
    }
    parser.finish();
    sameContents(src, scanner.result(), bundle.verified);
    out.commit();
  } catch (e) {
    out?.abort();
    throw e instanceof TarFormatError ? new KbundleError(`${src}: ${describeTarError(e)}`, ExitCode.UnsafeArchive) : e;
  } finally {
    if (inFd >= 0) closeSync(inFd);
  }
  return { size };
}

function sameContents(file: string, got: Scanned, want: VerifiedContents): void {
  const changed = (what: string) => new KbundleError(`${file} changed after it was verified: ${what}; not copied`, ExitCode.DigestMismatch);
  for (const digest of want.blobs.keys()) if (!got.blobs.has(digest)) throw changed(`blob ${digest} is no longer in it`);
  for (const digest of got.blobs.keys()) if (!want.blobs.has(digest)) throw changed(`it now holds blob ${digest}, which was not verified`);
  if (!got.indexJson.equals(want.indexJson)) throw changed('index.json differs from the verified one');
  if (!got.ociLayout.equals(want.ociLayout)) throw changed('oci-layout differs from the verified one');
}
