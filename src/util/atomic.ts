/**
 * The one way kbundle changes a file system. Every writer in src/ goes
 * through here so that a kill (or a power loss) at any instant leaves each
 * final name holding either its old content or its complete new content,
 * and so that the recovery sweep knows the single temp-name pattern.
 *
 * Order for a file (the ext4/xfs "rename is atomic, data is not" rule,
 * rename(2) and fsync(2) man pages):
 *   write <dir>/.<name>.kbundle-tmp-<pid>-<hex>  ->  fsync(temp)  ->
 *   rename(temp, name)  ->  fsync(dir)
 * The file fsync makes the data durable before the name points at it; the
 * directory fsync makes the new name durable before the caller's next step
 * relies on it. Directories created or entries removed are made durable by
 * fsyncing their parent.
 *
 * `durable: false` keeps the temp + rename (atomic for readers and kills) but
 * skips the fsyncs, for data that is rebuilt when lost (scratch, logs).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { copyFile, lstat, mkdir, open, readdir, rename, rm, symlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface WriteOptions {
  mode?: number;
  /** fsync the file and its directory (default true). */
  durable?: boolean;
}

/** The marker every temp name carries; `isTempName` recognises it. */
export const TEMP_MARK = '.kbundle-tmp-';

/** A temp name in the same directory (so the rename onto `path` is atomic), tagged with our pid. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}${TEMP_MARK}${process.pid}-${randomBytes(4).toString('hex')}`);
}

const TEMP_RE = /\.kbundle-tmp-(\d+)-[0-9a-f]+$/;

export function isTempName(name: string): boolean {
  return TEMP_RE.test(name);
}

/** The pid a temp name was made by, or null when `name` is not a temp name. */
export function tempOwner(name: string): number | null {
  const m = TEMP_RE.exec(name);
  return m ? Number(m[1]) : null;
}

/** Whether a process exists (temp names and the tree lock carry their writer's pid). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** fsync a file or a directory by path. */
export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export function fsyncPathSync(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export const fsyncDir = (dir: string) => fsyncPath(dir);

/**
 * mkdir -p, making each directory it creates durable in its parent. Returns
 * the first directory created (as `mkdir` does), or undefined.
 */
export async function mkdirDurable(dir: string, durable = true): Promise<string | undefined> {
  const first = await mkdir(dir, { recursive: true });
  if (first && durable) {
    // Every level from the first created one down to `dir` is new: sync each parent.
    for (let d = dir; ; d = dirname(d)) {
      await fsyncPath(dirname(d));
      if (d === first || d === dirname(d)) break;
    }
  }
  return first;
}

/** Fill a temp name beside `path`, then rename it onto `path` (and sync the directory); the temp never outlives a failure. */
async function viaTemp(path: string, durable: boolean, fill: (tmp: string) => Promise<void>): Promise<void> {
  await mkdirDurable(dirname(path), durable);
  const tmp = tempPathFor(path);
  try {
    await fill(tmp);
    await rename(tmp, path);
    if (durable) await fsyncPath(dirname(path));
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** fsync (and chmod, since open() applies the umask and the mode is part of what we promise) an open temp file. */
async function finish(tmp: string, opts: WriteOptions, fh?: FileHandle): Promise<void> {
  const durable = opts.durable !== false;
  if (opts.mode === undefined && !durable) return;
  const h = fh ?? (await open(tmp, 'r+'));
  try {
    if (opts.mode !== undefined) await h.chmod(opts.mode);
    if (durable) await h.sync();
  } finally {
    if (!fh) await h.close();
  }
}

/** Write `data` to `path` through a temp name: readers and crashes see the old file or the whole new one. */
export function writeFileDurable(path: string, data: string | Uint8Array, opts: WriteOptions = {}): Promise<void> {
  return viaTemp(path, opts.durable !== false, async (tmp) => {
    const fh = await open(tmp, 'wx', opts.mode ?? 0o644);
    try {
      await fh.writeFile(data);
      await finish(tmp, opts, fh);
    } finally {
      await fh.close();
    }
  });
}

/** Copy `src` to `dest` through a temp name (same promises as writeFileDurable). */
export function copyFileDurable(src: string, dest: string, opts: WriteOptions = {}): Promise<void> {
  return viaTemp(dest, opts.durable !== false, async (tmp) => {
    await copyFile(src, tmp);
    await finish(tmp, opts);
  });
}

/** Create or replace the symlink `path` -> `target` atomically. */
export function symlinkDurable(target: string, path: string, durable = true): Promise<void> {
  return viaTemp(path, durable, (tmp) => symlink(target, tmp));
}

/**
 * Move a file or directory (same file system). Both directories are synced:
 * the entry must durably leave one and appear in the other.
 */
export async function renameDurable(from: string, to: string, durable = true): Promise<void> {
  await mkdirDurable(dirname(to), durable);
  await rename(from, to);
  if (durable) {
    await fsyncPath(dirname(to));
    if (dirname(from) !== dirname(to)) await fsyncPath(dirname(from));
  }
}

/** rm -rf `path`, then make the removal durable in its parent (if the parent still exists). */
export async function removeDurable(path: string, durable = true): Promise<boolean> {
  let existed = true;
  try {
    await lstat(path);
  } catch {
    existed = false;
  }
  if (!existed) return false;
  await rm(path, { recursive: true, force: true });
  if (durable) await fsyncPath(dirname(path)).catch(() => undefined);
  return true;
}

/** rmdir `dir` if it is empty (durably); true when it was removed. */
export async function removeIfEmpty(dir: string, durable = true): Promise<boolean> {
  try {
    if ((await readdir(dir)).length) return false;
  } catch {
    return false;
  }
  return removeDurable(dir, durable);
}

/** Above this many entries one syncfs(2) (`sync -f`, coreutils) is cheaper than an fsync per file. */
const SYNCFS_THRESHOLD = 64;

/**
 * Make everything below `dir` durable, so that a rename of `dir` publishes
 * complete contents: fsync of each file and directory (bottom-up), or for
 * large trees one syncfs of the file system holding them.
 */
export async function syncTree(dir: string): Promise<void> {
  const files: string[] = [];
  const dirs: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const n of await readdir(d)) {
      const p = join(d, n);
      const st = await lstat(p);
      if (st.isDirectory()) await walk(p);
      else if (st.isFile()) files.push(p);
    }
    dirs.push(d);
  };
  await walk(dir);
  if (files.length + dirs.length > SYNCFS_THRESHOLD) {
    await execFileP('sync', ['-f', dir]);
    return;
  }
  for (const p of [...files, ...dirs]) await fsyncPath(p);
}

/**
 * Publish a directory built privately at `staging` as `dest`: its contents
 * are synced, any old `dest` is removed, then one rename makes it visible.
 */
export async function commitStagedDir(staging: string, dest: string, durable = true): Promise<void> {
  if (durable) await syncTree(staging);
  await rm(dest, { recursive: true, force: true });
  await renameDurable(staging, dest, durable);
}

/**
 * A private directory beside `dest` to build it in (`.<name>.kbundle-tmp-…`),
 * so `commitStagedDir` is a same-directory rename and the sweep finds it.
 */
export async function stagingDirFor(dest: string): Promise<string> {
  const dir = tempPathFor(dest);
  await mkdirDurable(dirname(dest));
  await mkdir(dir);
  return dir;
}

/**
 * Leftovers of writers that were killed: temp names (ours or, for trees
 * written by older kbundle versions, the legacy `.tmp-` / `.tmp_` / `.part`
 * forms) whose owning process is gone. Returns what was removed.
 */
export async function sweepTemps(dirs: Iterable<string>, opts: { legacy?: boolean } = {}): Promise<string[]> {
  const removed: string[] = [];
  for (const d of new Set(dirs)) {
    let names: string[];
    try {
      names = await readdir(d);
    } catch {
      continue;
    }
    let changed = false;
    for (const n of names) {
      const owner = tempOwner(n);
      const legacy = opts.legacy && (/\.tmp-\d+-[0-9a-f]+$/.test(n) || /^\.tmp_/.test(n));
      if ((owner !== null && !alive(owner)) || legacy) {
        await rm(join(d, n), { recursive: true, force: true });
        removed.push(join(d, n));
        changed = true;
      }
    }
    if (changed) await fsyncPath(d).catch(() => undefined);
  }
  return removed;
}

/**
 * A file written in pieces (synchronously) under a temp name and published
 * by `commit`; `abort` removes it. For writers that stream large data.
 */
export class PartFile {
  readonly tmp: string;
  readonly fd: number;
  private done = false;

  constructor(
    readonly final: string,
    private readonly durable = true,
  ) {
    this.tmp = tempPathFor(final);
    this.fd = openSync(this.tmp, 'wx', 0o644);
  }

  write(piece: Uint8Array): void {
    for (let off = 0; off < piece.length; ) off += writeSync(this.fd, piece, off, piece.length - off);
  }

  commit(): void {
    if (this.durable) fsyncSync(this.fd);
    closeSync(this.fd);
    this.done = true;
    renameSync(this.tmp, this.final);
    if (this.durable) fsyncPathSync(dirname(this.final));
  }

  abort(): void {
    if (!this.done) {
      this.done = true;
      try {
        closeSync(this.fd);
      } catch {
        // already closed
      }
    }
    rmSync(this.tmp, { force: true });
  }
}

