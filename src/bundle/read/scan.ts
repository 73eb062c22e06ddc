import { createHash, type Hash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { KbundleError } from '../../util/errors.js';
import { parseArchive, walkArchive, type WalkedEntry } from '../../tar/walk.js';
import type { Digested } from '../model/digest.js';
import { rangeThread, workerMinBytes } from './range-thread.js';
import { checkEntryName } from '../../tar/paths.js';
import { describeTarError, TarFormatError, type TarSink } from '../../tar/parse.js';
import { ExitCode } from '../../util/exit-codes.js';

// The range loop the reader thread runs too (range-read.cjs: one copy, loaded by both).
const { hashRange } = createRequire(import.meta.url)('./range-read.cjs') as typeof import('./range-read.cjs');
const digested = (r: { hex: string; size: number }): Digested => ({ digest: `sha256:${r.hex}`, size: r.size });

/** What one verifying pass over a bundle tar learned, before any JSON is trusted. */
export interface ScannedArchive {
  file: string;
  /** Every blob by digest with its actual size; content already matched the digest in its name. */
  blobs: Map<string, number>;
  /** Bytes of blobs that may be JSON or a signature (small, starting with `{` or `u`). */
  small: Map<string, Buffer>;
  ociLayout: Buffer;
  indexJson: Buffer;
  /**
   * Where blobs' bytes start, for every blob the header walk reached before
   * anything it does not follow (all of them in a bundle kbundle wrote).
   * Reads from an offset are verified like any other, so a wrong one can
   * only fail a read.
   */
  offsets: Map<string, number>;
}

export interface ScanLimits {
  /** Largest blob kept in memory for JSON parsing. */
  maxJsonSize?: number;
  /** Cap on the sum of blobs kept in memory. */
  maxRetained?: number;
}

export const BLOB_RE = /^blobs\/sha256\/([a-f0-9]{64})$/;
const TOP_FILES = new Set(['index.json', 'oci-layout']);
const DIRS = new Set(['blobs', 'blobs/sha256']);

type Member = { kind: 'dir' } | { kind: 'top'; path: string } | { kind: 'blob'; digest: string };
type Fail = (msg: string, code?: number) => KbundleError;

/**
 * Every member must be one the layout defines (directory `blobs/`,
 * `blobs/sha256/`, files `oci-layout`, `index.json`, `blobs/sha256/<hex>`)
 * and appear once. Shared by both scans, so they accept the same archives.
 */
function layoutChecker(fail: Fail): (name: string, type: string) => Member {
  const seen = new Set<string>();
  return (name, type) => {
    const named = checkEntryName(name);
    if ('reason' in named) throw fail(`entry ${JSON.stringify(name)} ${named.reason}`);
    const path = named.path;
    if (seen.has(path)) throw fail(`duplicate entry ${path}`);
    seen.add(path);
    if (DIRS.has(path)) {
      if (type !== 'directory') throw fail(`entry ${path} must be a directory, is a ${type}`);
      return { kind: 'dir' };
    }
    const blob = BLOB_RE.exec(path);
    if (!blob && !TOP_FILES.has(path)) throw fail(`entry ${path} is not part of an OCI image layout`);
    if (type !== 'file') throw fail(`entry ${path} must be a regular file, is a ${type}`);
    return blob ? { kind: 'blob', digest: `sha256:${blob[1]}` } : { kind: 'top', path };
  };
}

/** JSON starts with `{`, a minisign file with `u`; modules and sources never do, so they are not held in memory. */
const mayBeMetadata = (firstByte: number | undefined) => firstByte === 0x7b || firstByte === 0x75;

/**
 * Verifies the archive's layout and that every blob hashes to its own name,
 * with bounded memory: large blobs are hashed and dropped, only candidate
 * JSON is kept. Nothing is written to disk. When the header walk
 * understands the archive (every bundle kbundle writes), blobs are hashed
 * from their offsets, the large ones shared with a second thread; otherwise
 * the archive is read whole by the tar reader.
 */
export async function scanArchive(file: string, limits: ScanLimits = {}): Promise<ScannedArchive> {
  try {
    const walked = walkArchive(file);
    const scanned = await (walked.complete ? scanWalked(file, walked.entries, limits) : scanStreaming(file, limits));
    return { ...scanned, offsets: blobOffsets(walked.entries) };
  } catch (e) {
    // A missing file, a directory, an unreadable one: said as such, not as a stack trace.
    if (e instanceof KbundleError || !(e as NodeJS.ErrnoException).code) throw e;
    throw new KbundleError(`${file}: cannot be read as a bundle (${(e as Error).message})`, ExitCode.UnsafeArchive);
  }
}

/** Each blob path's data offset among walked entries (the first, should one repeat). */
function blobOffsets(entries: WalkedEntry[]): Map<string, number> {
  const at = new Map<string, number>();
  for (const e of entries) {
    const checked = checkEntryName(e.name);
    const blob = 'path' in checked && e.type === 'file' ? BLOB_RE.exec(checked.path) : null;
    if (blob && !at.has(`sha256:${blob[1]}`)) at.set(`sha256:${blob[1]}`, e.dataAt);
  }
  return at;
}

export type Scanned = Omit<ScannedArchive, 'offsets'>;

function limitsOf(limits: ScanLimits) {
  return { maxJson: limits.maxJsonSize ?? 1 << 20, maxRetained: limits.maxRetained ?? 64 << 20 };
}

async function scanWalked(file: string, entries: WalkedEntry[], limits: ScanLimits): Promise<Scanned> {
  const { maxJson, maxRetained } = limitsOf(limits);
  const fail: Fail = (msg, code = ExitCode.UnsafeArchive) => new KbundleError(`${file}: ${msg}`, code);
  const check = layoutChecker(fail);
  const top = new Map<string, WalkedEntry>();
  const blobList: (WalkedEntry & { digest: string })[] = [];
  for (const e of entries) {
    const m = check(e.name, e.type);
    if (m.kind === 'top') {
      if (e.size > maxJson) throw fail(`${m.path} is ${e.size} bytes, over the ${maxJson}-byte limit`, ExitCode.LimitExceeded);
      top.set(m.path, e);
    } else if (m.kind === 'blob') blobList.push({ ...e, digest: m.digest });
  }
  const fd = openSync(file, 'r');
  try {
    const readAll = (e: WalkedEntry): Buffer => {
      const b = Buffer.allocUnsafe(e.size);
      if (e.size > 0 && readSync(fd, b, 0, e.size, e.dataAt) !== e.size) throw fail('truncated archive (unexpected end of data)');
      return b;
    };
    const blobs = new Map<string, number>();
    const small = new Map<string, Buffer>();
    let retained = 0;
    const accept = (b: WalkedEntry & { digest: string }, got: Digested) => {
      if (got.size !== b.size) throw fail('truncated archive (unexpected end of data)');
      if (got.digest !== b.digest) throw fail(`blob ${b.digest} is corrupt: its content hashes to ${got.digest}`, ExitCode.DigestMismatch);
      blobs.set(b.digest, b.size);
    };
    const large = blobList.filter((b) => b.size > maxJson);
    // The second thread takes about half of the large blobs' bytes; below
    // workerMinBytes() starting it costs more than it saves.
    const total = large.reduce((n, b) => n + b.size, 0);
    const mine: typeof large = [];
    const theirs: typeof large = [];
    let theirBytes = 0;
    for (const b of [...large].sort((x, y) => y.size - x.size)) {
      if (total >= workerMinBytes() && theirBytes + b.size / 2 < total / 2) {
        theirs.push(b);
        theirBytes += b.size;
      } else mine.push(b);
    }
    const elsewhere = theirs.length > 0 ? rangeThread().hash(file, theirs.map((b) => ({ at: b.dataAt, size: b.size }))) : Promise.resolve([]);
    // Settled before anything here can throw, so a failure on this side never leaves the other's rejection unhandled.
    const settled = elsewhere.then(
      (r) => ({ ok: true as const, r }),
      (e: unknown) => ({ ok: false as const, e }),
    );
    let firstError: unknown = null;
    try {
      // The small ones (metadata candidates) here, while the other thread starts.
      for (const b of blobList) {
        if (b.size > maxJson) continue;
        const bytes = readAll(b);
        accept(b, { digest: 'sha256:' + createHash('sha256').update(bytes).digest('hex'), size: b.size });
        if (b.size > 0 && !mayBeMetadata(bytes[0])) continue;
        retained += b.size;
        if (retained > maxRetained) throw fail(`more than ${maxRetained} bytes of metadata blobs`, ExitCode.LimitExceeded);
        small.set(b.digest, bytes);
      }
    } catch (e) {
      firstError = e;
    }
    const buf = Buffer.allocUnsafeSlow(1 << 20);
    for (const b of firstError ? [] : mine) {
      try {
        accept(b, digested(hashRange(fd, b.dataAt, b.size, buf)));
      } catch (e) {
        firstError ??= e;
        break;
      }
    }
    const res = await settled;
    if (firstError) throw firstError;
    if (!res.ok) throw res.e;
    theirs.forEach((b, i) => accept(b, res.r[i]!));
    const ociLayout = top.get('oci-layout');
    const indexJson = top.get('index.json');
    if (!ociLayout) throw fail('no oci-layout file: not an OCI image layout', ExitCode.BadLayout);
    if (!indexJson) throw fail('no index.json: not an OCI image layout', ExitCode.BadLayout);
    return { file, blobs, small, ociLayout: readAll(ociLayout), indexJson: readAll(indexJson) };
  } finally {
    closeSync(fd);
  }
}

/** One pass over the whole archive with the tar reader, for archives the header walk does not follow. */
async function scanStreaming(file: string, limits: ScanLimits): Promise<Scanned> {
  const scanner = streamingScanner(file, limits);
  try {
    for await (const _ of parseArchive(file, scanner.sink));
  } catch (e) {
    throw e instanceof TarFormatError ? new KbundleError(`${file}: ${describeTarError(e)}`, ExitCode.UnsafeArchive) : e;
  }
  return scanner.result();
}

/**
 * The streaming scan's checks as a tar sink, for a caller that feeds the
 * bytes itself (copyVerified, which scans what it copies): the same layout
 * rules, every blob hashed against its name, metadata candidates kept.
 * `result` after the parser has finished.
 */
export function streamingScanner(file: string, limits: ScanLimits): { sink: TarSink; result(): Scanned } {
  const { maxJson, maxRetained } = limitsOf(limits);
  const fail: Fail = (msg, code = ExitCode.UnsafeArchive) => new KbundleError(`${file}: ${msg}`, code);
  const check = layoutChecker(fail);
  const blobs = new Map<string, number>();
  const small = new Map<string, Buffer>();
  let retained = 0;
  const top = new Map<string, Buffer>();
  // The entry being read: its bytes kept (metadata candidates) or only hashed.
  let cur: { m: Member; size: number; hash: Hash | null; keep: Buffer[] | null } | null = null;
  const sink: TarSink = {
    entry: (h) => {
      const m = check(h.name, h.type);
      if (m.kind === 'top' && h.size > maxJson) throw fail(`${m.path} is ${h.size} bytes, over the ${maxJson}-byte limit`, ExitCode.LimitExceeded);
      cur = { m, size: h.size, hash: m.kind === 'blob' ? createHash('sha256') : null, keep: m.kind === 'top' || h.size <= maxJson ? [] : null };
    },
    data: (piece) => {
      const c = cur!;
      c.hash?.update(piece);
      if (c.keep && c.m.kind === 'blob' && c.keep.length === 0 && !mayBeMetadata(piece[0])) c.keep = null;
      c.keep?.push(Buffer.from(piece));
    },
    end: () => {
      const { m, size, hash, keep } = cur!;
      cur = null;
      if (m.kind === 'top') top.set(m.path, Buffer.concat(keep!));
      if (m.kind !== 'blob') return;
      const got = 'sha256:' + hash!.digest('hex');
      if (got !== m.digest) throw fail(`blob ${m.digest} is corrupt: its content hashes to ${got}`, ExitCode.DigestMismatch);
      blobs.set(m.digest, size);
      if (keep) {
        retained += size;
        if (retained > maxRetained) throw fail(`more than ${maxRetained} bytes of metadata blobs`, ExitCode.LimitExceeded);
        small.set(m.digest, Buffer.concat(keep));
      }
    },
  };
  const result = (): Scanned => {
    const ociLayout = top.get('oci-layout');
    const indexJson = top.get('index.json');
    if (!ociLayout) throw fail('no oci-layout file: not an OCI image layout', ExitCode.BadLayout);
    if (!indexJson) throw fail('no index.json: not an OCI image layout', ExitCode.BadLayout);
    return { file, blobs, small, ociLayout, indexJson };
  };
  return { sink, result };
}
