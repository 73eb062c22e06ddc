import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { KbundleError } from '../util/errors.js';
import { byteOrder } from '../util/byte-order.js';
import { identityOfFd, sameIdentity, type FileIdentity } from '../util/file-identity.js';
import { checkEntryName, symlinkStaysInside } from './paths.js';
import { END_OF_ARCHIVE, encodeHeader, padding } from './ustar.js';
import { ExitCode } from '../util/exit-codes.js';

export type ReproEntry =
  | {
      type: 'file';
      path: string;
      executable?: boolean;
      file: string;
      size?: number;
      /** Fail unless the file is still the one that was hashed earlier (instead of hashing it again). */
      identity?: FileIdentity;
    }
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
 * owner 0:0 with empty names, modes 0644/0755/0777 (ustar.ts).
 */
export function reproTar(entries: ReproEntry[], opts: ReproTarOptions): Readable {
  const pieces = tarPieces(entries, opts);
  // Pieces may be views of a reused read buffer; a stream holds on to what it is given.
  return Readable.from(
    (function* () {
      for (const p of pieces) yield Buffer.from(p);
    })(),
    { objectMode: false },
  );
}

/**
 * The same tar as reproTar, as a synchronous sequence of pieces. A piece is
 * valid until the next one is asked for (file contents are read into one
 * reused buffer), so a consumer copies or writes it before moving on.
 * Entries are checked (names, duplicates, mtime) before the first piece.
 */
export function tarPieces(entries: ReproEntry[], opts: ReproTarOptions): Generator<Uint8Array, void, undefined> {
  const mtime = checkMtime(opts.mtime);
  const sorted = checkedEntries(entries);
  sorted.sort((a, b) => byteOrder(a.path, b.path));
  checkDuplicates(sorted);
  return (function* () {
    yield* generate(sorted, mtime);
    yield END_OF_ARCHIVE;
  })();
}

/** The content of a file entry, left for the caller to copy (tarEntryPieces). */
export interface FileContent {
  file: string;
  size: number;
  identity?: FileIdentity;
}

/**
 * Entries in the order given, without the end-of-archive blocks, and with
 * each file-backed entry's content as a FileContent for the caller to copy
 * (asynchronously, say) between the header and the padding: for a writer
 * that decides the order itself and writes the archive in parts
 * (bundle-file.ts). Same checks and bytes as tarPieces.
 */
export function tarEntryPieces(entries: ReproEntry[], opts: ReproTarOptions): Generator<Uint8Array | FileContent, void, undefined> {
  const mtime = checkMtime(opts.mtime);
  const checked = checkedEntries(entries);
  checkDuplicates([...checked].sort((a, b) => byteOrder(a.path, b.path)));
  return generate(checked, mtime, true);
}

function checkedEntries(entries: ReproEntry[]): ReproEntry[] {
  return entries.map((e) => ({ ...e, path: entryPath(e.path) }));
}

function checkDuplicates(sorted: ReproEntry[]): void {
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.path === sorted[i - 1]!.path) {
      throw new KbundleError(`tar: duplicate entry ${sorted[i]!.path}`, ExitCode.BadSpec);
    }
  }
}

function generate(entries: ReproEntry[], mtime: number, deferFiles: true): Generator<Uint8Array | FileContent, void, undefined>;
function generate(entries: ReproEntry[], mtime: number): Generator<Uint8Array, void, undefined>;
function* generate(entries: ReproEntry[], mtime: number, deferFiles = false): Generator<Uint8Array | FileContent, void, undefined> {
  const scratch = deferFiles ? Buffer.alloc(0) : Buffer.allocUnsafeSlow(READ_SIZE);
  for (const e of entries) {
    if (e.type === 'dir') {
      yield encodeHeader({ name: e.path + '/', type: 'directory', mode: 0o755, size: 0, mtime });
    } else if (e.type === 'symlink') {
      yield encodeHeader({ name: e.path, type: 'symlink', mode: 0o777, size: 0, mtime, linkname: e.target });
    } else {
      const mode = e.executable ? 0o755 : 0o644;
      if ('data' in e) {
        yield encodeHeader({ name: e.path, type: 'file', mode, size: e.data.byteLength, mtime });
        yield e.data;
        yield padding(e.data.byteLength);
      } else {
        const size = e.size ?? lstatSync(e.file).size;
        yield encodeHeader({ name: e.path, type: 'file', mode, size, mtime });
        if (deferFiles) yield { file: e.file, size, identity: e.identity };
        else yield* fileContent(e, size, scratch);
        yield padding(size);
      }
    }
  }
}

/** Read size for file contents; files are read with synchronous calls into one buffer. */
const READ_SIZE = 1 << 20;

/**
 * Exactly `size` bytes of the file, or an error: the header with that size
 * is already out, so a file that shrank or grew since it was listed (or was
 * replaced since it was hashed) must fail the archive, not corrupt it.
 * Synchronous reads on purpose: awaiting open/read/close on libuv's thread
 * pool left the packer idle most of the time (docs/performance.md).
 */
function* fileContent(e: { file: string; identity?: FileIdentity }, size: number, scratch: Buffer): Generator<Buffer, void, undefined> {
  const changed = (how: string) => new KbundleError(`${e.file} ${how}`, ExitCode.DigestMismatch);
  const fd = openSync(e.file, 'r');
  try {
    if (e.identity && !sameIdentity(identityOfFd(fd), e.identity)) throw changed('changed between hashing and packing');
    let left = size;
    while (left > 0) {
      const n = readSync(fd, scratch, 0, Math.min(scratch.length, left), null);
      if (n === 0) throw changed(`shrank below ${size} bytes while being packed`);
      left -= n;
      const piece = scratch.subarray(0, n);
      yield piece;
    }
    if (readSync(fd, scratch, 0, 1, null) !== 0) throw changed(`grew beyond ${size} bytes while being packed`);
  } finally {
    closeSync(fd);
  }
}

function checkMtime(mtime: number): number {
  // A negative mtime has no octal form; fractions would need pax records.
  if (!Number.isSafeInteger(mtime) || mtime < 0) {
    throw new KbundleError(`tar mtime must be a non-negative integer of seconds, got ${mtime}`, ExitCode.BadSpec);
  }
  return mtime;
}

function entryPath(p: string): string {
  const r = checkEntryName(p);
  if ('reason' in r) throw new KbundleError(`tar: entry ${JSON.stringify(p)} ${r.reason}`, ExitCode.BadSpec);
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
    (function* () {
      // Copied: pieces may be views of a reused read buffer.
      for (const p of packDirectoryPieces(dir, opts)) yield Buffer.from(p);
    })(),
    { objectMode: false },
  );
}

/** packDirectory as tarPieces: the tree is walked when the first piece is asked for. */
export function* packDirectoryPieces(dir: string, opts: PackDirectoryOptions): Generator<Uint8Array, void, undefined> {
  yield* tarPieces(collectTreeSync(dir, opts.prefix), opts);
}

/** The entries packDirectory would write, for callers that want to add their own. */
export async function collectTree(dir: string, prefix?: string): Promise<ReproEntry[]> {
  return collectTreeSync(dir, prefix);
}

function collectTreeSync(dir: string, prefix?: string): ReproEntry[] {
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
        throw new KbundleError(`${p}: not a regular file, directory or symlink; refusing to pack it`, ExitCode.BadSpec);
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
      throw new KbundleError(`${join(dir, rel)}: symlink to ${JSON.stringify(target)} points outside ${dir}; refusing to pack it`, ExitCode.BadSpec);
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
