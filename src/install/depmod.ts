/**
 * Real depmod against any install tree. depmod only takes a base dir that
 * contains lib/modules, so an install tree not ending in /lib/modules is
 * reached through a temporary <tmp>/lib/modules symlink. Unlike Debian's
 * dkms 3.0.10, a non-system install tree never makes us touch the system's.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, readdir, rm, symlink } from 'node:fs/promises';
import { alive, fsyncPath } from '../util/atomic.js';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export function depmodArgs(installTree: string, kernel: string): { base: string | null; args: string[] } {
  const tree = resolve(installTree);
  if (tree === '/lib/modules') return { base: null, args: ['-a', kernel] };
  if (tree.endsWith('/lib/modules')) return { base: dirname(dirname(tree)), args: ['-a', '-b', dirname(dirname(tree)), kernel] };
  return { base: null, args: [] }; // needs the symlink shim
}

/**
 * depmod writes its indexes by rename without fsync (kmod's depmod.c); the
 * journal op that ran it is dropped right after, so make them durable first.
 */
async function syncIndexes(installTree: string, kernel: string): Promise<void> {
  const dir = join(installTree, kernel);
  for (const n of await readdir(dir).catch(() => [] as string[])) if (n.startsWith('modules.')) await fsyncPath(join(dir, n)).catch(() => undefined);
  await fsyncPath(dir).catch(() => undefined);
}

/**
 * depmod writes each index as `<index>.<pid>.<usec>.<random>` and renames it
 * (kmod's libkmod-index / depmod.c); a killed depmod leaves those behind.
 * Only ours run on a tree under the lock, so a dead pid's are leftovers.
 */
async function sweepDepmodTemps(installTree: string, kernel: string): Promise<void> {
  const dir = join(installTree, kernel);
  for (const n of await readdir(dir).catch(() => [] as string[])) {
    const m = /^modules\..+\.(\d+)\.\d+\.\d+$/.exec(n);
    if (m && !alive(Number(m[1]))) await rm(join(dir, n), { force: true });
  }
}

export async function runDepmod(installTree: string, kernel: string): Promise<void> {
  await sweepDepmodTemps(installTree, kernel);
  try {
    await depmod(installTree, kernel);
  } finally {
    await sweepDepmodTemps(installTree, kernel);
  }
  await syncIndexes(installTree, kernel);
}

async function depmod(installTree: string, kernel: string): Promise<void> {
  const plan = depmodArgs(installTree, kernel);
  if (plan.args.length) {
    await run('depmod', plan.args);
    return;
  }
  const shim = await mkdtemp(join(tmpdir(), 'kbundle-depmod-'));
  try {
    await mkdir(join(shim, 'lib'), { recursive: true });
    await symlink(resolve(installTree), join(shim, 'lib', 'modules'));
    await run('depmod', ['-a', '-b', shim, kernel]);
  } finally {
    await rm(shim, { recursive: true, force: true });
  }
}
