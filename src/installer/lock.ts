/**
 * One installer at a time per DKMS tree. The lock is a file created with
 * O_EXCL holding the owner's pid; a lock whose pid is gone (kill -9, power
 * loss) is stale and taken over. Waiters poll instead of blocking in flock(2)
 * so a timeout can name the holder.
 */
import { open, readFile, rename, rm, mkdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { BundleExit } from '../bundle/exit-codes.js';
import { KbundleError } from '../util/errors.js';

export const lockPath = (dkmsTree: string) => join(dkmsTree, '.kbundle-install.lock');

export interface Lock {
  path: string;
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function holder(path: string): Promise<number | null> {
  try {
    const pid = Number((await readFile(path, 'utf8')).trim().split(/\s+/)[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
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
  const pid = await holder(moved);
  if (pid !== null && pid !== deadPid && alive(pid)) {
    await rename(moved, path).catch(() => undefined);
    return;
  }
  await rm(moved, { force: true });
}

export async function acquireLock(dkmsTree: string, opts: { timeoutMs: number; onWait?: (pid: number) => void }): Promise<Lock> {
  const path = lockPath(dkmsTree);
  await mkdir(dirname(path), { recursive: true });
  const deadline = Date.now() + opts.timeoutMs;
  let told = false;
  for (;;) {
    try {
      const fh = await open(path, 'wx', 0o644);
      await fh.writeFile(`${process.pid}\n`);
      await fh.sync();
      await fh.close();
      return {
        path,
        release: async () => {
          // Only remove our own lock (a stale-breaker could in theory have replaced it).
          if ((await holder(path)) === process.pid) await rm(path, { force: true });
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = await holder(path);
    if (pid === null || !alive(pid)) {
      // An empty file can be a lock being written this very moment; give it a beat.
      if (pid === null) await new Promise((r) => setTimeout(r, 50));
      const again = await holder(path);
      if (again === null || !alive(again)) {
        await breakStale(path, again ?? -1);
        continue;
      }
    }
    if (Date.now() >= deadline) {
      throw new KbundleError(`another kbundle install (pid ${pid}) holds ${path}; gave up waiting.`, BundleExit.Locked, [
        'Wait for it to finish, or raise --lock-timeout. A lock whose process is gone is taken over automatically.',
      ]);
    }
    if (!told && pid !== null) {
      opts.onWait?.(pid);
      told = true;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
