/**
 * The visible part of an install, run only while the journal exists: move
 * the staged source and <k>/<a> into the DKMS tree (renames), or build from
 * source through the core, then let the core's installTarget place the files
 * (originals archived, kernel-<k>-<a> link last, depmod). Every step is
 * idempotent, so replaying a journal over a half-done state converges.
 */
import { mkdir, readdir, rename, rm, rmdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { buildTarget } from '../build/build-target.js';
import { depmodFor, installTarget, uninstallTarget } from '../install/install.js';
import { restoreOriginals } from '../install/originals.js';
import { addModule } from '../lifecycle/add.js';
import type { RunContext } from '../lifecycle/context.js';
import { installedLink, kernelArchDir, moduleDir, originalModuleDir, sourceDir, versionDir, type Target } from '../tree/paths.js';
import { isInstalled } from '../tree/scan.js';
import { pathExists } from '../util/fs.js';
import type { Journal } from './journal.js';
import type { StagedPackage } from './stage.js';

export async function commitPackage(ctx: RunContext, sp: StagedPackage, t: Target, rootDigest: string): Promise<void> {
  const p = sp.plan;
  const m = { module: p.package, version: p.version };
  const src = sourceDir(ctx.roots, m);
  if (sp.source && !(await pathExists(src))) {
    await mkdir(ctx.roots.sourceTree, { recursive: true });
    await rename(sp.source, src);
  }
  await addModule(ctx, m, t);
  // Reinstalling the same version (a rebuilt bundle, or a replay): take the old files out through the core first.
  if (await isInstalled(ctx.roots, m, t)) await uninstallTarget(ctx, m, t, { depmod: false });
  const kad = kernelArchDir(ctx.roots, m, t);
  await rm(kad, { recursive: true, force: true });
  if (sp.kernelArchDir) {
    await mkdir(dirname(kad), { recursive: true });
    await rename(sp.kernelArchDir, kad);
  } else {
    await buildTarget(ctx, m, t, ctx.jobs || 1);
  }
  const level = p.level === 'none' ? 'source' : p.level;
  await installTarget(ctx, m, t, level, rootDigest);
}

/** Leftovers of writers killed mid-write: sibling temp files and build staging dirs. */
export async function sweepTemps(dirs: string[]): Promise<void> {
  for (const d of dirs) {
    for (const n of await readdir(d).catch(() => [] as string[])) {
      if (/\.tmp-|^\.tmp_/.test(n)) await rm(join(d, n), { recursive: true, force: true });
    }
  }
}

export function tempDirsOf(ctx: RunContext, j: Pick<Journal, 'kernel' | 'arch' | 'packages'>): string[] {
  const t = { kernel: j.kernel, arch: j.arch };
  return j.packages.flatMap((p) => {
    const m = { module: p.package, version: p.version };
    return [moduleDir(ctx.roots, p.package), join(versionDir(ctx.roots, m), t.kernel), kernelArchDir(ctx.roots, m, t), ctx.roots.sourceTree, ...p.installPaths.map((x) => dirname(x))];
  });
}

/**
 * Undo what a journaled install created, when it cannot be finished: the new
 * version's install and <k>/<a>, and the version dir / source only if the
 * journal says they did not exist before.
 */
export async function rollBack(ctx: RunContext, j: Journal): Promise<void> {
  const t = { kernel: j.kernel, arch: j.arch };
  for (const p of j.packages) {
    const m = { module: p.package, version: p.version };
    if (await isInstalled(ctx.roots, m, t)) await uninstallTarget(ctx, m, t, { depmod: false }).catch(() => undefined);
    for (const f of p.installPaths) await rm(f, { force: true });
    await rm(kernelArchDir(ctx.roots, m, t), { recursive: true, force: true });
    // Originals are ours to restore only if no other version of the module is installed on this kernel.
    if (!(await pathExists(installedLink(ctx.roots, p.package, t)))) await restoreOriginals(originalModuleDir(ctx.roots, p.package, t));
    if (!p.versionDirExisted) {
      await rm(versionDir(ctx.roots, m), { recursive: true, force: true });
      await rmdir(moduleDir(ctx.roots, p.package)).catch(() => undefined);
    } else {
      await rmdir(join(versionDir(ctx.roots, m), t.kernel)).catch(() => undefined);
    }
    if (!p.sourceExisted) await rm(sourceDir(ctx.roots, m), { recursive: true, force: true });
  }
  await sweepTemps(tempDirsOf(ctx, j));
  await depmodFor(ctx, j.kernel).catch((e) => ctx.warn(`depmod after roll-back failed: ${(e as Error).message}`));
}

export const describeTarget = (t: Target) => `${t.kernel} (${t.arch})`;
export const storedName = (file: string) => basename(file);
