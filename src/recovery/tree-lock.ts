/**
 * One mutating kbundle command at a time per DKMS tree: add, build, install,
 * uninstall, unbuild, remove, autoinstall, ldtarball and every bundle
 * install. The lock is a file created with O_EXCL holding the owner's pid and
 * command; a lock whose pid is gone (kill -9, power loss) is stale and taken
 * over. Waiters poll instead of blocking in flock(2) so a timeout can name
 * the holder. Within one process the lock is re-entrant (a bundle install
 * calls the same build and install functions as the lifecycle commands).
 */
import { open, readFile, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { KbundleError } from '../util/errors.js';
import { alive, mkdirDurable } from '../util/atomic.js';
import { ExitCode } from '../util/exit-codes.js';

export const lockPath = (dkmsTree: string) => join(dkmsTree, '.kbundle-install.lock');

/** Default wait for the lock: long enough for another command's builds. */
export const DEFAULT_LOCK_TIMEOUT_MS = 3600_000;

export interface Lock {
  path: string;
  release(): Promise<void>;
}

interface Holder {
  pid: number;
  what: string;
}

async function holder(path: string): Promise<Holder | null> {
  try {
    const [p, ...rest] = (await readFile(path, 'utf8')).trim().split(/\s+/);
    const pid = Number(p);
    return Number.isInteger(pid) && pid > 0 ? { pid, what: rest.join(' ') } : null;
  } catch {
    return null;
  }
}

/** The live process holding the tree's lock, if any (readers use this to stay out of its way). */
export async function liveHolder(dkmsTree: string): Promise<number | null> {
  const h = await holder(lockPath(dkmsTree));
  return h && alive(h.pid) ? h.pid : null;
}

/**
 * Takes a stale lock away by renaming it first: only one of several waiters
 * can win the rename, and the winner re-checks that what it moved is still
 * the dead owner's file (a live owner's fresh lock is put back).
 */
async function breakStale(path: string, deadPid: number): Promise<void> {
  const moved = `${path}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(path, moved);
  } catch {
    return; // someone else broke it already
  }
  const h = await holder(moved);
  if (h !== null && h.pid !== deadPid && alive(h.pid)) {
    await rename(moved, path).catch(() => undefined);
    return;
  }
  await rm(moved, { force: true });
}

const held = new Map<string, { count: number; lock: Lock }>();

export interface LockOptions {
  timeoutMs: number;
  /** What this process is doing, shown to waiters ("build hello/1.0"). */
  what?: string;
  onWait?: (pid: number, what: string) => void;
}

export async function acquireLock(dkmsTree: string, opts: LockOptions): Promise<Lock> {
  const path = lockPath(dkmsTree);
  const mine = held.get(path);
  if (mine) {
    mine.count++;
    return { path, release: async () => void mine.count-- };
  }
  await mkdirDurable(dkmsTree);
  const deadline = Date.now() + opts.timeoutMs;
  let told = false;
  for (;;) {
    try {
      const fh = await open(path, 'wx', 0o644);
      await fh.writeFile(`${process.pid} ${opts.what ?? ''}\n`);
      await fh.sync();
      await fh.close();
      const entry = {
        count: 1,
        lock: {
          path,
          release: async () => {
            if (--entry.count > 0) return;
            held.delete(path);
            // Only remove our own lock (a stale-breaker could in theory have replaced it).
            if ((await holder(path))?.pid === process.pid) await rm(path, { force: true });
          },
        },
      };
      held.set(path, entry);
      return entry.lock;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let h = await holder(path);
    if (h === null || !alive(h.pid)) {
      // An empty file can be a lock being written this very moment; give it a beat.
      if (h === null) await new Promise((r) => setTimeout(r, 50));
      h = await holder(path);
      if (h === null || !alive(h.pid)) {
        await breakStale(path, h?.pid ?? -1);
        continue;
      }
    }
    const what = h.what || 'command';
    if (Date.now() >= deadline) {
      throw new KbundleError(`another kbundle ${what} (pid ${h.pid}) holds ${path}; gave up waiting.`, ExitCode.Locked, [
        'Wait for it to finish, or raise --lock-timeout. A lock whose process is gone is taken over automatically.',
      ]);
    }
    if (!told) {
      opts.onWait?.(h.pid, what);
      told = true;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
