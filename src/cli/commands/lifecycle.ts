/**
 * add, build, install, uninstall, unbuild, remove: DKMS's lifecycle actions,
 * with several -k handled in one run (builds concurrently).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { installTarget, removeTargets, uninstallTarget } from '../../install/install.js';
import { addFromPath, addModule, requireAdded } from '../../lifecycle/add.js';
import { asKbundleError, buildMany, combinedExitCode, type TargetOutcome } from '../../lifecycle/build.js';
import type { RunContext } from '../../lifecycle/context.js';
import { isBuilt } from '../../build/build-target.js';
import type { ModuleRef, Target } from '../../tree/paths.js';
import { addedState, scanStatus } from '../../tree/scan.js';
import { finishedByRecovery } from '../../recovery/recover.js';
import { KbundleError } from '../../util/errors.js';
import { ExitCode } from '../../util/exit-codes.js';
import { printError } from '../report.js';
import { addCommonOptions, contextFrom, locked, requireModule, targetsFrom, type CommonOptions } from '../options.js';

type Action = (positional: string[], o: CommonOptions) => Promise<number>;

/** As in DKMS, a word naming a dkms.conf or a directory holding one is a source path, not M/V. */
const isPathArg = (w: string | undefined): w is string =>
  Boolean(w && ((w.endsWith('dkms.conf') && existsSync(w)) || existsSync(join(w, 'dkms.conf'))));

/** Resolves the module for add/build/install, adding it (from a path or the source tree) when needed. */
async function moduleForBuild(ctx: RunContext, o: CommonOptions, positional: string[], first: Target): Promise<ModuleRef> {
  const word = positional[0];
  if (!o.module && isPathArg(word)) {
    const m = await addFromPath(ctx, word, first);
    await addModule(ctx, m, first);
    return m;
  }
  const m = requireModule(o, positional);
  if ((await addedState(ctx.roots, m)) !== 'added') await addModule(ctx, m, first);
  return m;
}

function reportFailures(outcomes: TargetOutcome[]): void {
  for (const o of outcomes) {
    if (!o.error) continue;
    if (o.error.exitCode === ExitCode.Excluded) {
      process.stderr.write(`Warning: ${o.error.message}\n`);
      for (const d of o.error.details) process.stderr.write(`${d}\n`);
    } else printError(o.error);
  }
}

export const add: Action = async (positional, o) => {
  const targets = targetsFrom(o);
  const ctx = await contextFrom(o, targets[0]!.kernel);
  const word = positional[0];
  if (!o.module && isPathArg(word)) {
    const m = await addFromPath(ctx, word, targets[0]!);
    const r = await addModule(ctx, m, targets[0]!);
    if (r === 'already-added') ctx.say(`Module ${m.module}/${m.version} already added.`);
    return 0;
  }
  const m = requireModule(o, positional);
  const r = await addModule(ctx, m, targets[0]!);
  if (r === 'already-added') throw new KbundleError(`DKMS tree already contains: ${m.module}/${m.version}\nYou cannot add the same module/version combo more than once.`, ExitCode.NotInTree);
  return 0;
};

export const build: Action = async (positional, o) => {
  const targets = targetsFrom(o);
  const ctx = await contextFrom(o, targets[0]!.kernel);
  const m = await moduleForBuild(ctx, o, positional, targets[0]!);
  const outcomes = await buildMany(ctx, m, targets);
  reportFailures(outcomes);
  return combinedExitCode(outcomes);
};

export const install: Action = async (positional, o) => {
  const targets = targetsFrom(o);
  const ctx = await contextFrom(o, targets[0]!.kernel);
  const m = await moduleForBuild(ctx, o, positional, targets[0]!);
  const needBuild: Target[] = [];
  for (const t of targets) if (!(await isBuilt(ctx, m, t))) needBuild.push(t);
  const built = await buildMany({ ...ctx, force: false }, m, needBuild);
  const outcomes: Array<{ target: Target; error: KbundleError | null }> = [...built];
  for (const t of targets) {
    if (built.find((b) => b.target === t)?.error) continue;
    try {
      await installTarget(ctx, m, t);
      outcomes.push({ target: t, error: null });
    } catch (e) {
      outcomes.push({ target: t, error: asKbundleError(e) });
    }
  }
  reportFailures(outcomes as TargetOutcome[]);
  return combinedExitCode(outcomes);
};

/** -k targets, or with --all every kernel/arch the module is built for. */
async function targetsForRemoval(ctx: RunContext, o: CommonOptions, m: ModuleRef): Promise<Target[]> {
  if (!o.all) return targetsFrom(o);
  if (o.kernelver.length) throw new KbundleError('You cannot specify a kernel version and also specify --all on the command line.', ExitCode.Usage);
  if (o.arch.length) throw new KbundleError('You cannot specify an arch and also specify --all on the command line.', ExitCode.NotInTree);
  const entries = await scanStatus(ctx.roots, { module: m.module, version: m.version }, async () => null);
  return entries.filter((e) => e.kernel !== null).map((e) => ({ kernel: e.kernel!, arch: e.arch! }));
}

export const uninstall: Action = async (positional, o) => {
  const ctx = await contextFrom(o);
  const m = requireModule(o, positional);
  await requireAdded(ctx, m);
  for (const t of await targetsForRemoval(ctx, o, m)) await uninstallTarget(ctx, m, t);
  return 0;
};

export const unbuild: Action = async (positional, o) => {
  const ctx = await contextFrom(o);
  const m = requireModule(o, positional);
  await requireAdded(ctx, m);
  const built: Target[] = [];
  for (const t of await targetsForRemoval(ctx, o, m)) {
    if (await isBuilt(ctx, m, t)) built.push(t);
    else ctx.say(`Module ${m.module}/${m.version} is not built for kernel ${t.kernel} (${t.arch}). Skipping...`);
  }
  if (built.length) await removeTargets(ctx, m, built, false);
  return 0;
};

export const remove: Action = async (positional, o) => {
  const ctx = await contextFrom(o);
  const m = requireModule(o, positional);
  const state = await addedState(ctx.roots, m);
  // Re-running a remove that was interrupted: recovery has just finished it, which is what was asked.
  if (!state && finishedByRecovery().some((op) => op.kind === 'remove' && op.forgetVersion && op.module === m.module && op.version === m.version)) {
    ctx.say(`Module ${m.module}/${m.version} was removed by finishing the interrupted remove.`);
    return 0;
  }
  if (!state) throw new KbundleError(`The module/version combo ${m.module}/${m.version} is not located in the DKMS tree.`, ExitCode.NotInTree);
  const targets: Target[] = [];
  for (const t of await targetsForRemoval(ctx, o, m)) if (await isBuilt(ctx, m, t)) targets.push(t);
  await removeTargets(ctx, m, targets, true);
  return 0;
};

export function registerLifecycle(program: Command, run: (a: Action) => (...args: unknown[]) => Promise<void>): void {
  const defs: Array<[string, string, Action]> = [
    ['add', 'register a module source (M/V in the source tree, or a directory holding a dkms.conf)', add],
    ['build', 'build a module for one or more kernels (concurrently)', build],
    ['install', 'build if needed, then install into the kernel module tree and run depmod', install],
    ['uninstall', 'remove the installed module, restore any original module, run depmod', uninstall],
    ['unbuild', 'uninstall, then delete the built files for the kernel(s)', unbuild],
    ['remove', 'uninstall and unbuild; forget the module version once no kernel is left', remove],
  ];
  for (const [name, desc, fn] of defs) {
    addCommonOptions(program.command(name).description(desc).argument('[module]', 'M/V, or a path (add/build/install)')).action(run(locked(name, fn)));
  }
}
