/**
 * The visible part of an install, run only while the journal holds its op:
 * move the staged source and <k>/<a> into the DKMS tree (renames), or build
 * from source through the core, then let the core's installTarget place the
 * files (originals archived, kernel-<k>-<a> link last, depmod). Every step is
 * idempotent, so replaying the op over a half-done state converges.
 */
import { join } from 'node:path';
import { buildTarget } from '../build/build-target.js';
import { depmodFor, installTarget, uninstallTarget } from '../install/install.js';
import { restoreOriginals } from '../install/originals.js';
import { addModule } from '../lifecycle/add.js';
import type { RunContext } from '../lifecycle/context.js';
import type { BundleInstallOp } from '../recovery/ops.js';
import { installedLink, kernelArchDir, moduleDir, originalModuleDir, sourceDir, versionDir, type Target } from '../tree/paths.js';
import { isInstalled } from '../tree/scan.js';
import { commitStagedDir, mkdirDurable, removeDurable, removeIfEmpty } from '../util/atomic.js';
import { pathExists } from '../util/fs.js';
import type { StagedPackage } from './stage.js';

export async function commitPackage(ctx: RunContext, sp: StagedPackage, t: Target, rootDigest: string): Promise<void> {
  const p = sp.plan;
  const m = { module: p.package, version: p.version };
  const src = sourceDir(ctx.roots, m);
  if (sp.source && !(await pathExists(src))) {
    await mkdirDurable(ctx.roots.sourceTree);
    await commitStagedDir(sp.source, src);
  }
  await addModule(ctx, m, t);
  // Reinstalling the same version (a rebuilt bundle, or a replay): take the old files out through the core first.
  if (await isInstalled(ctx.roots, m, t)) await uninstallTarget(ctx, m, t, { depmod: false });
  const kad = kernelArchDir(ctx.roots, m, t);
  if (sp.kernelArchDir) {
    await commitStagedDir(sp.kernelArchDir, kad);
  } else {
    await removeDurable(kad);
    await buildTarget(ctx, m, t, ctx.jobs || 1);
  }
  const level = p.level === 'none' ? 'source' : p.level;
  await installTarget(ctx, m, t, level, rootDigest);
}

/**
 * Undo what a journaled bundle install created, when it cannot be finished:
 * the new version's install and <k>/<a>, and the version dir / source only if
 * the journal says they did not exist before.
 */
export async function rollBack(ctx: RunContext, j: BundleInstallOp): Promise<void> {
  const t = { kernel: j.kernel, arch: j.arch };
  for (const p of j.packages) {
    const m = { module: p.package, version: p.version };
    if (await isInstalled(ctx.roots, m, t)) await uninstallTarget(ctx, m, t, { depmod: false }).catch(() => undefined);
    for (const f of p.installPaths) await removeDurable(f);
    await removeDurable(kernelArchDir(ctx.roots, m, t));
    // Originals are ours to restore only if no other version of the module is installed on this kernel.
    if (!(await pathExists(installedLink(ctx.roots, p.package, t)))) await restoreOriginals(originalModuleDir(ctx.roots, p.package, t));
    if (!p.versionDirExisted) {
      await removeDurable(versionDir(ctx.roots, m));
      await removeIfEmpty(moduleDir(ctx.roots, p.package));
    } else {
      await removeIfEmpty(join(versionDir(ctx.roots, m), t.kernel));
    }
    if (!p.sourceExisted) await removeDurable(sourceDir(ctx.roots, m));
  }
  await depmodFor(ctx, j.kernel).catch((e) => ctx.warn(`depmod after roll-back failed: ${(e as Error).message}`));
}
