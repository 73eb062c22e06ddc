import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { KbundleError } from '../../util/errors.js';
import { Verifier } from '../model/digest.js';
import { blobChunks, copyBlobsFromArchive, readBlobFromArchive } from './reader.js';
import { scanArchive, type ScanLimits } from './scan.js';
import { SafeExtraction, type ExtractLimits, type ExtractedEntry } from '../../tar/safe-extract.js';
import { verifyScanned, type BundleIndex, type PackageSummary, type TargetSummary, type VerifyOptions } from './verify.js';
import { unzstdRange } from './unzstd-thread.js';
import { workerMinBytes } from './range-thread.js';
import { ZstdDecoder } from '../model/zstd.js';
import { ExitCode } from '../../util/exit-codes.js';

export interface OpenOptions extends VerifyOptions, ScanLimits {}

/** A bundle file whose signature, layout and every blob digest have been verified. */
export interface OpenBundle {
  index: BundleIndex;
  /** What the verification read from the file, for checking a later read of it (copyVerified). */
  readonly verified: VerifiedContents;
  /** Streams a blob, re-verified against its digest and size while read. */
  readBlob(digest: string): Readable;
  /**
   * Copies the given blobs (all if omitted) into `dir/<hex>`, verified;
   * 32 MiB or more in total are copied on the reader thread, leaving this
   * one free meanwhile (e.g. for extractSource).
   */
  copyBlobsTo(dir: string, digests?: string[]): Promise<void>;
  /** Manifest/config bytes held from the scan (small JSON blobs only). */
  jsonBlob(digest: string): Buffer;
  package(name: string): PackageSummary;
  target(packageName: string, kernelRelease: string, arch: string): TargetSummary | undefined;
  /**
   * Unpacks a package's source into `dest` (must not exist): zstd output
   * capped at the signed uncompressed size and checked against its digest,
   * tar entries checked by SafeExtraction; `dest` appears only when all of
   * it passed. A source of 32 MiB or more is decompressed on a worker thread.
   */
  extractSource(packageName: string, dest: string, limits?: ExtractLimits): Promise<ExtractedEntry[]>;
}

/**
 * Every byte of a bundle that anything relies on: each blob by digest and
 * size (its content matched the digest), and index.json and oci-layout,
 * which the verification required to be exactly what the signed content
 * determines. Tar headers are not here: nothing reads them beyond an
 * entry's name, type and size.
 */
export interface VerifiedContents {
  blobs: ReadonlyMap<string, number>;
  indexJson: Buffer;
  ociLayout: Buffer;
  /** The limits the scan ran with, so a re-scan accepts what it accepted. */
  limits: ScanLimits;
}

export async function openBundle(file: string, opts: OpenOptions): Promise<OpenBundle> {
  const path = resolve(file);
  const scan = await scanArchive(path, opts);
  const index = verifyScanned(scan, opts);
  const size = (digest: string) => {
    const s = scan.blobs.get(digest);
    if (s === undefined) throw new KbundleError(`${path}: no blob ${digest} in this bundle`, ExitCode.BadLayout);
    return s;
  };
  const pkg = (name: string) => {
    const p = index.packages.find((x) => x.name === name);
    if (!p) throw new KbundleError(`${path}: no package ${name} (has: ${index.packages.map((x) => x.name).join(', ')})`, ExitCode.BadLayout);
    return p;
  };
  const offsets = scan.offsets;
  return {
    index,
    verified: { blobs: scan.blobs, indexJson: scan.indexJson, ociLayout: scan.ociLayout, limits: { maxJsonSize: opts.maxJsonSize, maxRetained: opts.maxRetained } },
    readBlob: (digest) => readBlobFromArchive(path, { digest, size: size(digest) }, offsets.get(digest)),
    copyBlobsTo: (dir, digests) => copyBlobsFromArchive(path, new Map((digests ?? [...scan.blobs.keys()]).map((d) => [d, size(d)])), dir, offsets),
    jsonBlob: (digest) => {
      const b = scan.small.get(digest);
      if (!b) throw new KbundleError(`${path}: blob ${digest} is not a metadata blob`, ExitCode.BadLayout);
      return b;
    },
    package: pkg,
    target: (name, kernelRelease, arch) => pkg(name).targets.find((t) => t.kernelRelease === kernelRelease && t.arch === arch),
    extractSource: async (name, dest, limits) => {
      const p = pkg(name);
      const declared = p.config.source;
      const what = `source of ${p.name} ${p.version}`;
      const blob = { digest: p.source.digest, size: size(p.source.digest) };
      const at = offsets.get(blob.digest);
      const x = await SafeExtraction.begin(dest, { what, ...limits });
      try {
        if (at !== undefined && blob.size >= workerMinBytes()) {
          // Decompressed (and its output hashed) on a second thread while this one writes the files.
          await unzstdRange(path, at, blob.size, declared, what, (piece) => x.feed(piece));
        } else {
          // One loop, no streams: read (verified against the blob digest),
          // decompress (capped at the signed size), verify the tar, extract.
          const plain = new Verifier(declared, `${what} (uncompressed)`);
          const zstd = new ZstdDecoder(declared.size, what);
          // Small reads: zstd expands each input chunk in one go, and 64 KiB
          // of compressed headers is already ~640 KiB of output.
          for await (const chunk of blobChunks(path, blob, at, 64 << 10)) {
            zstd.decode(chunk, (piece) => {
              plain.update(piece);
              x.feed(piece);
            });
          }
          zstd.finish();
          plain.finish();
        }
      } catch (e) {
        await x.abort();
        throw x.explain(e);
      }
      return x.commit();
    },
  };
}

/** Shorthand for `ls`-style callers that need nothing but the verified summary. */
export async function verifyBundle(file: string, opts: OpenOptions): Promise<BundleIndex> {
  return (await openBundle(file, opts)).index;
}

