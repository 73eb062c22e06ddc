import { resolve } from 'node:path';
import { pipeline, type Readable } from 'node:stream';
import { KbundleError } from '../util/errors.js';
import { VerifyingStream } from './digest.js';
import { BundleExit } from './exit-codes.js';
import { copyBlobsFromArchive, locateBlobs, readBlobFromArchive, scanArchive, type ScanLimits } from './reader.js';
import { safeExtract, type ExtractLimits, type ExtractedEntry } from './safe-extract.js';
import { verifyScanned, type BundleIndex, type PackageSummary, type TargetSummary, type VerifyOptions } from './verify.js';
import { decompressStream } from './zstd.js';

export interface OpenOptions extends VerifyOptions, ScanLimits {}

/** A bundle file whose signature, layout and every blob digest have been verified. */
export interface OpenBundle {
  index: BundleIndex;
  /** Streams a blob, re-verified against its digest and size while read. */
  readBlob(digest: string): Readable;
  /** Copies the given blobs (all if omitted) into `dir/<hex>`, verified. */
  copyBlobsTo(dir: string, digests?: string[]): Promise<void>;
  /** Manifest/config bytes held from the scan (small JSON blobs only). */
  jsonBlob(digest: string): Buffer;
  package(name: string): PackageSummary;
  target(packageName: string, kernelRelease: string, arch: string): TargetSummary | undefined;
  /**
   * Unpacks a package's source into `dest` (must not exist): zstd output
   * capped at the signed uncompressed size and checked against its digest,
   * tar entries checked by safeExtract.
   */
  extractSource(packageName: string, dest: string, limits?: ExtractLimits): Promise<ExtractedEntry[]>;
}

export async function openBundle(file: string, opts: OpenOptions): Promise<OpenBundle> {
  const path = resolve(file);
  const scan = await scanArchive(path, opts);
  const index = verifyScanned(scan, opts);
  const size = (digest: string) => {
    const s = scan.blobs.get(digest);
    if (s === undefined) throw new KbundleError(`${path}: no blob ${digest} in this bundle`, BundleExit.BadLayout);
    return s;
  };
  const pkg = (name: string) => {
    const p = index.packages.find((x) => x.name === name);
    if (!p) throw new KbundleError(`${path}: no package ${name} (has: ${index.packages.map((x) => x.name).join(', ')})`, BundleExit.BadLayout);
    return p;
  };
  // Walked on the first blob read: verify and ls never read one.
  let offsets: Map<string, number> | null = null;
  const blobOffsets = () => (offsets ??= locateBlobs(path));
  const readBlob = (digest: string, chunkSize?: number) => readBlobFromArchive(path, { digest, size: size(digest) }, blobOffsets().get(digest), chunkSize);
  return {
    index,
    readBlob: (digest) => readBlob(digest),
    copyBlobsTo: (dir, digests) => copyBlobsFromArchive(path, new Map((digests ?? [...scan.blobs.keys()]).map((d) => [d, size(d)])), dir, blobOffsets()),
    jsonBlob: (digest) => {
      const b = scan.small.get(digest);
      if (!b) throw new KbundleError(`${path}: blob ${digest} is not a metadata blob`, BundleExit.BadLayout);
      return b;
    },
    package: pkg,
    target: (name, kernelRelease, arch) => pkg(name).targets.find((t) => t.kernelRelease === kernelRelease && t.arch === arch),
    extractSource: async (name, dest, limits) => {
      const p = pkg(name);
      const declared = p.config.source;
      // Small reads: zstd expands each input chunk in one go, ignoring
      // backpressure, and 1 MiB of compressed headers is ~10 MiB of output.
      const src = readBlob(p.source.digest, 64 << 10);
      const what = `source of ${p.name} ${p.version}`;
      const plain = pipeline(src, decompressStream({ maxOutput: declared.size, what }), new VerifyingStream(declared, `${what} (uncompressed)`), () => undefined);
      return safeExtract(plain, dest, { what, ...limits });
    },
  };
}

/** Shorthand for `ls`-style callers that need nothing but the verified summary. */
export async function verifyBundle(file: string, opts: OpenOptions): Promise<BundleIndex> {
  return (await openBundle(file, opts)).index;
}

