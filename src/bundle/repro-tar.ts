import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { KbundleError } from '../util/errors.js';
import { byteOrder } from './canonical-json.js';
import { BundleExit } from './exit-codes.js';
import { checkEntryName, symlinkStaysInside } from './tar-paths.js';
import { VerifyingStream, type Digested } from './digest.js';

export type ReproEntry =
  | { type: 'file'; path: string; executable?: boolean; file: string; size?: number; expect?: Digested }
  | { type: 'file'; path: string; executable?: boolean; data: Uint8Array }
  | { type: 'dir'; path: string }
  | { type: 'symlink'; path: string; target: string };

export interface ReproTarOptions {
  /** Seconds since the epoch for every entry (SOURCE_DATE_EPOCH or the newest source mtime). */
  mtime: number;
}

/**
 * A tar whose bytes depend only on the entries' paths, types, contents,
 * executable bits and link targets plus `mtime`: paths in UTF-8 byte order,
 * owner 0:0 with empty names, modes 0644/0755/0777. tar-stream fills any
 * field we leave out from defaults that are not all deterministic
 * (symlink mode, uid clamping), so every header field is set here.
 */
export function reproTar(entries: ReproEntry[], opts: ReproTarOptions): Readable {
  const mtime = checkMtime(opts.mtime);
  const sorted = [...entries].map((e) => ({ ...e, path: entryPath(e.path) }));
  sorted.sort((a, b) => byteOrder(a.path, b.path));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].path === sorted[i - 1].path) {
      throw new KbundleError(`tar: duplicate entry ${sorted[i].path}`, BundleExit.BadSpec);
    }
  }
  const pack = tar.pack();
  (async () => {
    for (const e of sorted) {
      const base = { mtime, uid: 0, gid: 0, uname: '', gname: '' };
      if (e.type === 'dir') {
        await entry(pack, { ...base, name: e.path + '/', type: 'directory', mode: 0o755 });
      } else if (e.type === 'symlink') {
        await entry(pack, { ...base, name: e.path, type: 'symlink', linkname: e.target, mode: 0o777 });
      } else {
        const mode = e.executable ? 0o755 : 0o644;
        if ('data' in e) {
          await entry(pack, { ...base, name: e.path, type: 'file', mode, size: e.data.byteLength }, e.data);
        } else {
          const size = e.size ?? lstatSync(e.file).size;
          if (size <= SMALL_FILE) {
            // One synchronous read and one buffered entry. Awaiting each
            // open/stat/read/close on the thread pool left the packer idle
            // ~70% of the time on sources of many small files (measured:
            // /usr/include, 7,900 files, 4.3 s -> see docs/performance.md).
            const data = readFileSync(e.file);
            if (data.length !== size) throw new KbundleError(`${e.file} changed size while being packed`, BundleExit.BadSpec);
            if (e.expect) checkDigest(data, e.expect, e.file);
            await entry(pack, { ...base, name: e.path, type: 'file', mode, size }, data);
            continue;
          }
          const sink = pack.entry({ ...base, name: e.path, type: 'file', mode, size });
          // tar-stream fails the archive if fewer or more bytes than `size`
          // arrive, so a file changing under us cannot produce a bad tar.
          const src = createReadStream(e.file, { highWaterMark: 1 << 20 });
          // `expect` re-checks content hashed earlier, so a file rewritten
          // in place between hashing and packing cannot slip in.
          if (e.expect) await pipeline(src, new VerifyingStream(e.expect, e.file), sink);
          else await pipeline(src, sink);
        }
      }
    }
    pack.finalize();
  })().catch((err: Error) => pack.destroy(err));
  return Readable.from(pack as unknown as AsyncIterable<Buffer>, { objectMode: false });
}

/** Files up to this size are read whole instead of streamed. */
const SMALL_FILE = 1 << 16;

function checkDigest(data: Buffer, expect: Digested, file: string): void {
  const got = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  if (got !== expect.digest || data.length !== expect.size) {
    throw new KbundleError(`${file} changed between hashing and packing (${got} != ${expect.digest})`, BundleExit.DigestMismatch);
  }
}

function entry(pack: tar.Pack, header: Parameters<tar.Pack['entry']>[0], data?: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    const cb = (err?: Error | null) => (err ? reject(err) : resolve());
    if (data) pack.entry(header, data, cb);
    else pack.entry(header, cb);
  });
}

function checkMtime(mtime: number): Date {
  // tar-stream writes a negative mtime as invalid octal; fractions would need pax records.
  if (!Number.isSafeInteger(mtime) || mtime < 0) {
    throw new KbundleError(`tar mtime must be a non-negative integer of seconds, got ${mtime}`, BundleExit.BadSpec);
  }
  return new Date(mtime * 1000);
}

function entryPath(p: string): string {
  const r = checkEntryName(p);
  if ('reason' in r) throw new KbundleError(`tar: entry ${JSON.stringify(p)} ${r.reason}`, BundleExit.BadSpec);
  return r.path;
}

export interface PackDirectoryOptions extends ReproTarOptions {
  /** Put every entry under this directory inside the tar (e.g. `hello-1.0`). */
  prefix?: string;
}

/**
 * Packs a module source tree: dotfiles included, exec bits kept (any x bit →
 * 0755), symlinks stored as symlinks. A symlink leading outside the tree is
 * refused because the tar would then depend on (and leak) files the tree
 * does not contain; sockets, fifos and devices have no place in a source.
 */
export function packDirectory(dir: string, opts: PackDirectoryOptions): Readable {
  return Readable.from(
    (async function* () {
      yield* reproTar(await collectTree(dir, opts.prefix), opts) as AsyncIterable<Buffer>;
    })(),
    { objectMode: false },
  );
}

/** The entries packDirectory would write, for callers that want to add their own. */
export async function collectTree(dir: string, prefix?: string): Promise<ReproEntry[]> {
  const entries: ReproEntry[] = [];
  const links = new Map<string, string>();
  const kinds = new Map<string, 'symlink' | 'other'>();
  const pre = prefix ? entryPath(prefix) : '';
  if (pre) entries.push({ type: 'dir', path: pre });
  // Synchronous on purpose: per-entry thread-pool round trips, not disk, were the cost.
  const walk = (abs: string, rel: string): void => {
    for (const d of readdirSync(abs, { withFileTypes: true }).sort((a, b) => byteOrder(a.name, b.name))) {
      const r = rel ? `${rel}/${d.name}` : d.name;
      const p = join(abs, d.name);
      const path = pre ? `${pre}/${r}` : r;
      const st = lstatSync(p);
      if (st.isSymbolicLink()) {
        const target = readlinkSync(p);
        links.set(r, target);
        kinds.set(r, 'symlink');
        entries.push({ type: 'symlink', path, target });
      } else if (st.isDirectory()) {
        kinds.set(r, 'other');
        entries.push({ type: 'dir', path });
        walk(p, r);
      } else if (st.isFile()) {
        kinds.set(r, 'other');
        entries.push({ type: 'file', path, file: p, size: st.size, executable: (st.mode & 0o111) !== 0 });
      } else {
        throw new KbundleError(`${p}: not a regular file, directory or symlink; refusing to pack it`, BundleExit.BadSpec);
      }
    }
  };
  walk(dir, '');
  const lookup = (p: string) => {
    const k = kinds.get(p);
    if (!k) return null;
    return k === 'symlink' ? { kind: 'symlink' as const, target: links.get(p)! } : { kind: 'other' as const };
  };
  for (const [rel, target] of links) {
    if (!symlinkStaysInside(rel, target, lookup)) {
      throw new KbundleError(`${join(dir, rel)}: symlink to ${JSON.stringify(target)} points outside ${dir}; refusing to pack it`, BundleExit.BadSpec);
    }
  }
  return entries;
}

/** Newest mtime (whole seconds) in a tree: the fallback tar mtime when SOURCE_DATE_EPOCH is unset. */
export async function newestMtime(dir: string): Promise<number> {
  let newest = 0;
  const walk = (abs: string): void => {
    for (const d of readdirSync(abs, { withFileTypes: true })) {
      const p = join(abs, d.name);
      const st = lstatSync(p);
      newest = Math.max(newest, Math.floor(st.mtimeMs / 1000));
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return newest;
}
