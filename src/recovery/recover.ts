/**
 * The one recovery path. Whoever takes a DKMS tree's lock — any mutating
 * command, `bundle recover`, or `status` when the lock is free — first
 * finishes what the journal says is in progress, innermost op first, by
 * calling the function that started it with the recorded op (`resume`):
 * install, uninstall, remove and add roll forward, a build rolls back (its
 * work was private), a bundle install rolls forward from the stored bundle
 * or, if that is impossible, back. Then temp names of dead writers are swept.
 * The result is what a clean run of the interrupted command leaves.
 */
import { lstat, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { addModule } from '../lifecycle/add.js';
import type { RunContext } from '../lifecycle/context.js';
import { installTarget, removeTargets, uninstallTarget } from '../install/install.js';
import { kernelArchDir, moduleDir, originalModuleDir } from '../tree/paths.js';
import { KbundleError } from '../util/errors.js';
import { removeDurable, removeIfEmpty, sweepTemps } from '../util/atomic.js';
import { isDir, pathExists } from '../util/fs.js';
import { endOp, forgetJournal, journalPath, readOps } from './journal.js';
import { contextFromRecord, describeOp, type JournalOp } from './ops.js';
import { acquireLock, DEFAULT_LOCK_TIMEOUT_MS, liveHolder, lockPath } from './tree-lock.js';
import { ExitCode } from '../util/exit-codes.js';

export type RecoveryResult = 'none' | 'forward' | 'back';

/** Directories below the DKMS tree, not following links, skipping make's scratch dirs (only kbundle writes temps elsewhere). */
async function treeDirs(root: string, depth: number): Promise<string[]> {
  const out = [root];
  if (depth === 0) return out;
  for (const n of await readdir(root).catch(() => [] as string[])) {
    if (n === 'build' || n.startsWith('build-') || n === 'source') continue;
    const p = join(root, n);
    if ((await lstat(p).catch(() => null))?.isDirectory()) out.push(...(await treeDirs(p, depth - 1)));
  }
  return out;
}

/** Install-tree directories an op may have written temps into. */
function installDirsOf(op: JournalOp): string[] {
  switch (op.kind) {
    case 'install':
      return (op.decision?.files ?? []).map((f) => dirname(f.installPath));
    case 'bundle-install':
      return op.packages.flatMap((p) => p.installPaths.map((x) => dirname(x)));
    default:
      return [];
  }
}

async function resumeOp(io: RunContext, op: JournalOp): Promise<RecoveryResult> {
  if (op.kind === 'bundle-install') {
    const { resumeBundleInstall } = await import('../deploy/deploy.js');
    return resumeBundleInstall(io, op);
  }
  const ctx = contextFromRecord(op.ctx, io);
  const m = { module: op.module, version: op.version };
  switch (op.kind) {
    case 'install':
      return (await installTarget(ctx, m, { kernel: op.kernel, arch: op.arch }, op.selection, op.bundleDigest, op)) === 'rolled-back' ? 'back' : 'forward';
    case 'uninstall':
      await uninstallTarget(ctx, m, { kernel: op.kernel, arch: op.arch }, { depmod: op.depmod }, op);
      return 'forward';
    case 'remove':
      await removeTargets(ctx, m, op.targets, op.forgetVersion, op);
      return 'forward';
    case 'add':
      try {
        await addModule(ctx, m, { kernel: op.kernel, arch: op.arch }, op);
        return 'forward';
      } catch (e) {
        ctx.warn(`cannot finish it (${(e as Error).message}); rolling back.`);
        await endOp(ctx.roots.dkmsTree, op.id);
        await removeIfEmpty(moduleDir(ctx.roots, op.module));
        return 'back';
      }
    case 'build': {
      await removeDurable(op.staging);
      await removeDurable(op.buildDir);
      await removeIfEmpty(dirname(kernelArchDir(ctx.roots, m, op)));
      await endOp(ctx.roots.dkmsTree, op.id);
      return 'back';
    }
  }
}

/** The ops the last recovery in this process finished (a re-run of an interrupted command asks). */
let finished: JournalOp[] = [];
export const finishedByRecovery = (): readonly JournalOp[] => finished;

/** Finish every interrupted op of the tree (caller holds the lock). */
export async function recoverTree(io: RunContext): Promise<RecoveryResult> {
  finished = [];
  const tree = io.roots.dkmsTree;
  forgetJournal(tree);
  // A writer killed before its journal entry leaves at most a temp name here (the journal's own, an `add PATH` copy).
  await sweepTemps([tree, io.roots.sourceTree]);
  const ops = await readOps(tree);
  let result: RecoveryResult = 'none';
  if (ops.length) {
    const dirs = await treeDirs(tree, 5);
    for (const op of ops) dirs.push(...installDirsOf(op));
    for (const op of ops) if (op.kind === 'install') dirs.push(originalModuleDir(op.ctx.roots, op.module, op));
    await sweepTemps(dirs, { legacy: true });
    for (const op of [...ops].reverse()) {
      io.warn(`the ${describeOp(op)} by pid ${op.pid} was interrupted; finishing it.`);
      try {
        if ((await resumeOp(io, op)) === 'back' || result === 'back') result = 'back';
        else result = 'forward';
        finished.push(op);
      } catch (e) {
        throw new KbundleError(`recovering the interrupted ${describeOp(op)} failed: ${(e as Error).message}`, ExitCode.RecoveryFailed, [
          `The journal is kept: ${journalPath(tree)}`,
          ...((e as KbundleError).details ?? []),
        ]);
      }
    }
    forgetJournal(tree);
    if ((await readOps(tree)).length) throw new KbundleError(`recovery left ops in ${journalPath(tree)}`, ExitCode.RecoveryFailed);
  }
  const { collectGarbage } = await import('../deploy/deploy.js');
  await collectGarbage(io);
  return result;
}

/**
 * Run `fn` holding the tree lock, after finishing whatever an earlier,
 * killed command left in progress. Every mutating command goes through here.
 */
export async function withTreeLock<T>(io: RunContext, what: string, fn: () => Promise<T>, timeoutMs = DEFAULT_LOCK_TIMEOUT_MS): Promise<T> {
  const lock = await acquireLock(io.roots.dkmsTree, {
    timeoutMs,
    what,
    onWait: (pid, other) => io.warn(`waiting for another kbundle ${other} (pid ${pid}) to finish...`),
  });
  try {
    await recoverTree(io);
    return await fn();
  } finally {
    await lock.release();
  }
}

/**
 * For readers (`status`): if a killed command left work behind and nobody
 * holds the lock, finish it first, so status never shows a half state. A
 * live holder is left alone — it finishes its own work.
 */
export async function settleForReader(io: RunContext): Promise<void> {
  const tree = io.roots.dkmsTree;
  if (!(await pathExists(journalPath(tree))) && !(await pathExists(lockPath(tree))) && !(await isDir(join(tree, '.kbundle-staging')))) return;
  if ((await liveHolder(tree)) !== null) return;
  try {
    await withTreeLock(io, 'status', async () => undefined, 0);
  } catch (e) {
    if ((e as KbundleError).exitCode === ExitCode.Locked) return; // taken meanwhile by a live command
    throw e;
  }
}
