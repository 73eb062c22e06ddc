import { chmodSync, closeSync, fchmodSync, futimesSync, linkSync, mkdirSync, openSync, symlinkSync, writeSync } from 'node:fs';
import { lstat, rename, rm, utimes } from 'node:fs/promises';
import { stagingDirFor } from '../util/atomic.js';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { KbundleError } from '../util/errors.js';
import { TarFormatError, TarParser, type TarHeader, type TarSink, type TarType } from './parse.js';
import { checkEntryName, symlinkStaysInside, type LinkLookup } from './paths.js';
import { ExitCode } from '../util/exit-codes.js';

export interface ExtractLimits {
  /** Largest single file accepted (header size, checked before any byte is read). */
  maxEntrySize?: number;
  /** Largest sum of file sizes. */
  maxTotalSize?: number;
  maxEntries?: number;
}

export interface ExtractOptions extends ExtractLimits {
  /** Name of the archive in messages. */
  what?: string;
}

export interface ExtractedEntry {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'link';
  size: number;
  executable: boolean;
  /** Symlink target or hardlink source path. */
  target?: string;
}

const DEFAULT_LIMITS: Required<ExtractLimits> = {
  maxEntrySize: 4 * 1024 ** 3,
  maxTotalSize: 16 * 1024 ** 3,
  maxEntries: 1_000_000,
};

type Kind = 'file' | 'dir' | 'implicit-dir' | 'symlink' | 'link';

/**
 * Extracts a tar into `dest` (which must not exist) with nothing reaching
 * `dest` unless the whole archive passes: entries go to a sibling staging
 * directory that is renamed into place only at the end and removed on any
 * failure. Every header is checked before its bytes are written: no absolute
 * paths or `..`, no device/fifo entries, no duplicates, nothing placed below
 * a symlink (so writes never follow one), symlinks and hardlinks that stay
 * inside the tree, sizes within the limits. Modes are normalised to
 * 0644/0755 and owners are never applied, so an archive cannot plant setuid
 * files.
 */
export async function safeExtract(input: Readable, dest: string, opts: ExtractOptions = {}): Promise<ExtractedEntry[]> {
  const x = await SafeExtraction.begin(dest, opts);
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) x.feed(chunk);
  } catch (e) {
    await x.abort();
    throw x.explain(e);
  }
  return x.commit();
}

/**
 * safeExtract driven by pushing the tar's bytes in (`feed`, synchronous:
 * each entry is checked and written before it returns), for callers that
 * produce the bytes themselves (the bundle source: read, verified and
 * decompressed in one loop). Ends with `commit` or `abort`.
 */
export class SafeExtraction implements TarSink {
  private readonly parser = new TarParser(this);
  private readonly fail: (msg: string, code?: number) => KbundleError;
  private readonly kinds = new Map<string, Kind>();
  private readonly linkTargets = new Map<string, string>();
  private readonly lookup: LinkLookup;
  private readonly out: ExtractedEntry[] = [];
  private readonly dirTimes: [string, Date][] = [];
  private total = 0;
  /** Open file of the entry being written, and its header. */
  private fd = -1;
  private current: TarHeader | null = null;

  private constructor(
    private readonly staging: string,
    private readonly dest: string,
    what: string,
    private readonly limits: Required<ExtractLimits>,
  ) {
    this.fail = (msg, code = ExitCode.UnsafeArchive) => new KbundleError(`${what}: ${msg}`, code);
    this.lookup = (p) => {
      const k = this.kinds.get(p);
      if (!k) return null;
      return k === 'symlink' ? { kind: 'symlink', target: this.linkTargets.get(p)! } : { kind: 'other' };
    };
  }

  static async begin(dest: string, opts: ExtractOptions = {}): Promise<SafeExtraction> {
    const what = opts.what ?? 'archive';
    if (await exists(dest)) throw new KbundleError(`${dest} already exists; refusing to extract ${what} over it`, ExitCode.UnsafeArchive);
    // Private until commit; the whole tree is made durable when the installer publishes it (commitStagedDir).
    const staging = await stagingDirFor(dest);
    return new SafeExtraction(staging, dest, what, { ...DEFAULT_LIMITS, ...stripUndefined(opts) });
  }

  /** Parses and writes what `chunk` completes; throws on the first problem (then call `abort`). */
  feed(chunk: Buffer): void {
    this.parser.feed(chunk);
  }

  /** The archive ended: checks it ended cleanly and that links hold, then moves the tree into place. */
  async commit(): Promise<ExtractedEntry[]> {
    try {
      this.parser.finish();
      // Links can be chained through symlinks that appear later in the
      // archive; re-check every one with the complete picture.
      for (const [p, target] of this.linkTargets) {
        if (!symlinkStaysInside(p, target, this.lookup)) throw this.fail(`symlink ${p} -> ${target} points outside the extraction root`);
      }
      for (const [abs, t] of this.dirTimes.reverse()) await utimes(abs, t, t);
      await rename(this.staging, this.dest);
      return this.out;
    } catch (e) {
      await this.abort();
      throw this.explain(e);
    }
  }

  /** Removes everything written so far. */
  async abort(): Promise<void> {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    await rm(this.staging, { recursive: true, force: true });
  }

  /** A tar format problem as this archive's error (exit 32); other errors unchanged. */
  explain(e: unknown): unknown {
    return e instanceof TarFormatError ? this.fail(`truncated or not a tar archive (${e.message})`) : e;
  }

  entry(h: TarHeader): void {
    const { kinds, limits, fail, staging } = this;
    const named = checkEntryName(h.name);
    if ('reason' in named) throw fail(`entry ${JSON.stringify(h.name)} ${named.reason}`);
    const path = named.path;
    if (this.out.length >= limits.maxEntries) throw fail(`more than ${limits.maxEntries} entries`, ExitCode.LimitExceeded);
    const type = entryType(h.type);
    if (!type) throw fail(`entry ${path} is a ${h.type}; only files, directories and links are allowed`);
    const prior = kinds.get(path);
    if (prior && !(prior === 'implicit-dir' && type === 'dir')) throw fail(`duplicate entry ${path}`);
    // Ancestors must be directories: a file below a symlink would be
    // written wherever the symlink points.
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const anc = parts.slice(0, i).join('/');
      const k = kinds.get(anc);
      if (k && k !== 'dir' && k !== 'implicit-dir') throw fail(`entry ${path} lies below ${anc}, which is a ${k}`);
      if (!k) {
        kinds.set(anc, 'implicit-dir');
        mkdirSync(join(staging, anc), { mode: 0o755 });
      }
    }
    const abs = join(staging, path);
    const executable = (h.mode & 0o111) !== 0;
    this.current = h;
    if (type === 'file') {
      if (h.size > limits.maxEntrySize) throw fail(`entry ${path} is ${h.size} bytes, over the ${limits.maxEntrySize}-byte limit`, ExitCode.LimitExceeded);
      this.total += h.size;
      if (this.total > limits.maxTotalSize) throw fail(`contents exceed the ${limits.maxTotalSize}-byte limit`, ExitCode.LimitExceeded);
      kinds.set(path, 'file');
      // Synchronous calls: awaiting open/write/chmod/utimes on the thread
      // pool per file and per chunk, not the disk, was the unpack cost (idle
      // most of the time, measured on tmpfs).
      this.fd = openSync(abs, 'wx', 0o600);
      this.out.push({ path, type, size: h.size, executable });
    } else if (type === 'dir') {
      if (prior !== 'implicit-dir') mkdirSync(abs, { mode: 0o755 });
      chmodSync(abs, 0o755);
      kinds.set(path, 'dir');
      this.dirTimes.push([abs, h.mtime]);
      this.out.push({ path, type, size: 0, executable: true });
    } else if (type === 'symlink') {
      const target = h.linkname ?? '';
      kinds.set(path, 'symlink');
      this.linkTargets.set(path, target);
      if (!symlinkStaysInside(path, target, this.lookup)) throw fail(`symlink ${path} -> ${target} points outside the extraction root`);
      symlinkSync(target, abs);
      this.out.push({ path, type, size: 0, executable: false, target });
    } else {
      const linkname = h.linkname ?? '';
      const src = checkEntryName(linkname);
      if ('reason' in src) throw fail(`hardlink ${path} -> ${linkname}: target ${src.reason}`);
      if (kinds.get(src.path) !== 'file') throw fail(`hardlink ${path} -> ${linkname}: target is not a regular file earlier in the archive`);
      kinds.set(path, 'link');
      linkSync(join(staging, src.path), abs);
      this.out.push({ path, type, size: 0, executable: false, target: src.path });
    }
  }

  data(piece: Buffer): void {
    // Bytes of anything but a regular file (a directory or link with a size) are skipped.
    if (this.fd < 0) return;
    for (let off = 0; off < piece.length; ) off += writeSync(this.fd, piece, off, piece.length - off);
  }

  end(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    try {
      fchmodSync(fd, (this.current!.mode & 0o111) !== 0 ? 0o755 : 0o644);
      futimesSync(fd, this.current!.mtime, this.current!.mtime);
    } finally {
      closeSync(fd);
    }
  }
}

function entryType(t: TarType): ExtractedEntry['type'] | null {
  switch (t) {
    case 'file':
      return 'file';
    case 'directory':
      return 'dir';
    case 'symlink':
      return 'symlink';
    case 'link':
      return 'link';
    default:
      return null;
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

function stripUndefined(o: ExtractLimits): ExtractLimits {
  const r: ExtractLimits = {};
  if (o.maxEntrySize !== undefined) r.maxEntrySize = o.maxEntrySize;
  if (o.maxTotalSize !== undefined) r.maxTotalSize = o.maxTotalSize;
  if (o.maxEntries !== undefined) r.maxEntries = o.maxEntries;
  return r;
}
