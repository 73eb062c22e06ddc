import { chmodSync, closeSync, fchmodSync, futimesSync, linkSync, mkdirSync, openSync, symlinkSync, writeSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, rename, rm, utimes } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { KbundleError } from '../util/errors.js';
import { BundleExit } from './exit-codes.js';
import { checkEntryName, symlinkStaysInside, type LinkLookup } from './tar-paths.js';

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
  const what = opts.what ?? 'archive';
  const limits = { ...DEFAULT_LIMITS, ...stripUndefined(opts) };
  if (await exists(dest)) throw new KbundleError(`${dest} already exists; refusing to extract ${what} over it`, BundleExit.UnsafeArchive);
  await mkdir(dirname(dest), { recursive: true });
  const staging = await mkdtemp(join(dirname(dest), `.${basename(dest)}.partial-`));
  const fail = (msg: string, code: number = BundleExit.UnsafeArchive) => new KbundleError(`${what}: ${msg}`, code);
  const kinds = new Map<string, Kind>();
  const linkTargets = new Map<string, string>();
  const lookup: LinkLookup = (p) => {
    const k = kinds.get(p);
    if (!k) return null;
    return k === 'symlink' ? { kind: 'symlink', target: linkTargets.get(p)! } : { kind: 'other' };
  };
  const out: ExtractedEntry[] = [];
  const dirTimes: [string, Date][] = [];
  let total = 0;
  const extractor = tar.extract();
  try {
    const done = pipeline(input, extractor as unknown as NodeJS.WritableStream).catch((e: Error) => {
      throw e instanceof KbundleError ? e : fail(`truncated or not a tar archive (${e.message})`);
    });
    try {
      for await (const entry of extractor) {
        const h = entry.header;
        const named = checkEntryName(h.name);
        if ('reason' in named) throw fail(`entry ${JSON.stringify(h.name)} ${named.reason}`);
        const path = named.path;
        if (out.length >= limits.maxEntries) throw fail(`more than ${limits.maxEntries} entries`, BundleExit.LimitExceeded);
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
        if (type === 'file') {
          if (h.size > limits.maxEntrySize) throw fail(`entry ${path} is ${h.size} bytes, over the ${limits.maxEntrySize}-byte limit`, BundleExit.LimitExceeded);
          total += h.size;
          if (total > limits.maxTotalSize) throw fail(`contents exceed the ${limits.maxTotalSize}-byte limit`, BundleExit.LimitExceeded);
          kinds.set(path, 'file');
          // Synchronous calls: awaiting open/write/chmod/utimes on the
          // thread pool per file and per chunk, not the disk, was the unpack
          // cost (idle most of the time, measured on tmpfs).
          const fd = openSync(abs, 'wx', 0o600);
          try {
            for await (const c of entry as AsyncIterable<Buffer>) for (let off = 0; off < c.length; ) off += writeSync(fd, c, off, c.length - off);
            fchmodSync(fd, executable ? 0o755 : 0o644);
            futimesSync(fd, h.mtime, h.mtime);
          } finally {
            closeSync(fd);
          }
          out.push({ path, type, size: h.size, executable });
          continue;
        }
        entry.resume();
        if (type === 'dir') {
          if (prior !== 'implicit-dir') mkdirSync(abs, { mode: 0o755 });
          chmodSync(abs, 0o755);
          kinds.set(path, 'dir');
          dirTimes.push([abs, h.mtime]);
          out.push({ path, type, size: 0, executable: true });
        } else if (type === 'symlink') {
          kinds.set(path, 'symlink');
          linkTargets.set(path, h.linkname);
          if (!symlinkStaysInside(path, h.linkname, lookup)) throw fail(`symlink ${path} -> ${h.linkname} points outside the extraction root`);
          symlinkSync(h.linkname, abs);
          out.push({ path, type, size: 0, executable: false, target: h.linkname });
        } else {
          const src = checkEntryName(h.linkname);
          if ('reason' in src) throw fail(`hardlink ${path} -> ${h.linkname}: target ${src.reason}`);
          if (kinds.get(src.path) !== 'file') throw fail(`hardlink ${path} -> ${h.linkname}: target is not a regular file earlier in the archive`);
          kinds.set(path, 'link');
          linkSync(join(staging, src.path), abs);
          out.push({ path, type, size: 0, executable: false, target: src.path });
        }
      }
    } catch (e) {
      extractor.destroy();
      await done.catch(() => undefined);
      // A tar-stream parse error surfaces through the entry being read.
      throw e instanceof KbundleError || (e as NodeJS.ErrnoException).code ? e : fail(`truncated or not a tar archive (${(e as Error).message})`);
    }
    await done;
    // Links can be chained through symlinks that appear later in the
    // archive; re-check every one with the complete picture.
    for (const [p, target] of linkTargets) {
      if (!symlinkStaysInside(p, target, lookup)) throw fail(`symlink ${p} -> ${target} points outside the extraction root`);
    }
    for (const [abs, t] of dirTimes.reverse()) await utimes(abs, t, t);
    await rename(staging, dest);
    return out;
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    throw e;
  }
}

function entryType(t: string): ExtractedEntry['type'] | null {
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
