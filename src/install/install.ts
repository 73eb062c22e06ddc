/**
 * install / uninstall / unbuild / remove of a built (module, kernel, arch).
 * Each records an op in the journal before its first visible change and
 * drops it after the last, so an interrupted run is finished by recovery
 * through these same functions (`resume`). Within an op the order still
 * matters for readers: install writes module files first and the
 * kernel-<k>-<a> link, DKMS's "installed" marker, last; uninstall removes
 * the marker first. depmod failure rolls the install back (DKMS exit 6).
 */
import { dirname } from 'node:path';
import { readdir, readlink, realpath } from 'node:fs/promises';
import { evaluateFor, type RunContext } from '../lifecycle/context.js';
import { runModuleScript } from '../lifecycle/scripts.js';
import { beginOp, endOp, updateOp } from '../recovery/journal.js';
import { opBase, type InstallDecision, type InstallOp, type RemoveOp, type UninstallOp } from '../recovery/ops.js';
import {
  installRecordPath,
  installedLink,
  installedLinkTarget,
  kernelArchDir,
  kernelInstallDir,
  moduleDir,
  originalModuleDir,
  sourceLink,
  versionDir,
  type ModuleRef,
  type Target,
} from '../tree/paths.js';
import { readJsonRecord, writeJsonRecord, type InstallRecord } from '../tree/records.js';
import { isInstalled } from '../tree/scan.js';
import { copyFileDurable, removeDurable, removeIfEmpty, symlinkDurable } from '../util/atomic.js';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';
import { isDir, pathExists, sha256File } from '../util/fs.js';
import { runDepmod } from './depmod.js';
import { placedModules } from './layout.js';
import { archiveOriginals, findOriginals, restoreOriginals } from './originals.js';

/** The version whose kernel-<k>-<a> link exists for this module, if any. */
export async function installedVersion(ctx: RunContext, module: string, t: Target): Promise<string | null> {
  try {
    const target = await readlink(installedLink(ctx.roots, module, t));
    return target.split('/')[0] ?? null;
  } catch {
    return null;
  }
}

async function sourceDirOf(ctx: RunContext, m: ModuleRef): Promise<string> {
  try {
    return await realpath(sourceLink(ctx.roots, m));
  } catch {
    return sourceLink(ctx.roots, m);
  }
}

export async function depmodFor(ctx: RunContext, kernel: string): Promise<void> {
  if (ctx.noDepmod) return;
  ctx.say('depmod...');
  await runDepmod(ctx.roots.installTree, kernel);
}

export type InstallResult = 'installed' | 'already-installed' | 'rolled-back';

/**
 * Paths under <installTree>/<k> that DKMS-managed modules own: install
 * records of every version of this module on this kernel. A file there is
 * never a distribution "original", whatever its name.
 */
async function managedPaths(ctx: RunContext, module: string, t: Target): Promise<Set<string>> {
  const out = new Set<string>();
  const mdir = moduleDir(ctx.roots, module);
  for (const v of await readdir(mdir).catch(() => [] as string[])) {
    const rec = await readJsonRecord<InstallRecord>(installRecordPath(ctx.roots, { module, version: v }, t)).catch(() => null);
    for (const f of rec?.files ?? []) out.add(f.path);
  }
  return out;
}

/** Where each file goes and which originals it displaces; made once and journaled before anything moves. */
async function decideInstall(ctx: RunContext, m: ModuleRef, t: Target): Promise<InstallDecision> {
  const placed = await placedModules(ctx, m, t);
  const firstInstall = !(await isDir(originalModuleDir(ctx.roots, m.module, t)));
  const managed = await managedPaths(ctx, m.module, t);
  const originals: InstallDecision['originals'] = [];
  if (firstInstall) {
    for (const p of placed) {
      const found = (await findOriginals(kernelInstallDir(ctx.roots, t.kernel), p.destName, p.installPath)).filter((x) => !managed.has(x));
      if (found.length) originals.push({ destName: p.destName, paths: found });
    }
  }
  const createdDirs: string[] = [];
  for (const p of placed) {
    for (let dir = dirname(p.installPath); dir.startsWith(kernelInstallDir(ctx.roots, t.kernel) + '/'); dir = dirname(dir)) {
      if (!(await pathExists(dir)) && !createdDirs.includes(dir)) createdDirs.push(dir);
    }
  }
  createdDirs.sort((a, b) => b.length - a.length);
  return { files: placed.map((p) => ({ destName: p.destName, builtFile: p.builtFile, installPath: p.installPath })), originals, firstInstall, createdDirs };
}

export async function installTarget(
  ctx: RunContext,
  m: ModuleRef,
  t: Target,
  selection: InstallRecord['selection'] = 'build',
  /** Root digest of the bundle the binaries came from (bundle installs). */
  bundleDigest?: string,
  resume?: InstallOp,
): Promise<InstallResult> {
  let op: InstallOp;
  let srcDir: string;
  let postInstall: string | null = null;
  if (resume) {
    op = resume;
    srcDir = await sourceDirOf(ctx, m);
  } else {
    if ((await isInstalled(ctx.roots, m, t)) && !ctx.force) {
      ctx.say(`Module ${m.module}/${m.version} already installed on kernel ${t.kernel} (${t.arch}), skip. You may override by specifying --force.`);
      return 'already-installed';
    }
    if (!(await pathExists(kernelInstallDir(ctx.roots, t.kernel)))) {
      throw new KbundleError(`The directory ${kernelInstallDir(ctx.roots, t.kernel)} does not exist: kernel ${t.kernel} is not installed in ${ctx.roots.installTree}.`, ExitCode.InstallFailed);
    }
    const conf = await evaluateFor(ctx, m, t);
    postInstall = conf.postInstall;
    srcDir = await sourceDirOf(ctx, m);
    const rc = await runModuleScript(ctx, 'pre_install', conf.preInstall, srcDir);
    if (rc !== 0 && !ctx.force) {
      throw new KbundleError(`The pre_install script failed (exit ${rc}); the installation of ${m.module}/${m.version} was aborted.`, ExitCode.PreInstallFailed);
    }
    op = await beginOp(ctx.roots.dkmsTree, { ...opBase(ctx, m), kind: 'install', kernel: t.kernel, arch: t.arch, selection, ...(bundleDigest ? { bundleDigest } : {}) });
  }

  // ---- journaled: from here on recovery finishes this install ----
  if (op.rollingBack) return finishRollback(ctx, m, t, op);
  if (!op.decision) {
    if (await isInstalled(ctx.roots, m, t)) await uninstallTarget(ctx, m, t, { depmod: false });
    const other = await installedVersion(ctx, m.module, t);
    if (other && other !== m.version) {
      // Journaled before it goes: a roll-back of this install puts it back (an upgrade is all or nothing).
      if (!op.replaced) {
        const rec = await readJsonRecord<InstallRecord>(installRecordPath(ctx.roots, { module: m.module, version: other }, t)).catch(() => null);
        op.replaced = { version: other, selection: rec?.selection ?? 'build', ...(rec?.bundleDigest ? { bundleDigest: rec.bundleDigest } : {}) };
        await updateOp(ctx.roots.dkmsTree, op);
      }
      ctx.say(`Uninstalling ${m.module}/${other} from kernel ${t.kernel} (${t.arch}) first.`);
      await uninstallTarget(ctx, { module: m.module, version: other }, t, { depmod: false });
    }
    op.decision = await decideInstall(ctx, m, t);
    await updateOp(ctx.roots.dkmsTree, op);
  }
  const d = op.decision;
  const record: InstallRecord = { format: 'kbundle-install-v1', files: [], selection: op.selection, ...(op.bundleDigest ? { bundleDigest: op.bundleDigest } : {}) };
  const archive = originalModuleDir(ctx.roots, m.module, t);
  try {
    for (const f of d.files) {
      ctx.say(`${f.destName}.ko:`);
      const originals = d.originals.find((o) => o.destName === f.destName)?.paths ?? [];
      if (originals.length) {
        ctx.say(` - Original module: archiving ${originals[0]}`);
        await archiveOriginals(originals, archive, kernelInstallDir(ctx.roots, t.kernel));
      }
      ctx.say(` - Installing to ${dirname(f.installPath)}/`);
      await copyFileDurable(f.builtFile, f.installPath);
      record.files.push({ destName: f.destName, path: f.installPath, sha256: await sha256File(f.installPath) });
    }
    await writeJsonRecord(installRecordPath(ctx.roots, m, t), record);
    await symlinkDurable(installedLinkTarget(m, t), installedLink(ctx.roots, m.module, t));
  } catch (e) {
    await rollbackInstall(ctx, m, t, d);
    await endOp(ctx.roots.dkmsTree, op.id);
    throw e;
  }
  if (!op.postInstallDone) {
    if (resume) postInstall = (await evaluateFor(ctx, m, t).catch(() => null))?.postInstall ?? null;
    await runModuleScript(ctx, 'post_install', postInstall, srcDir);
    op.postInstallDone = true;
    await updateOp(ctx.roots.dkmsTree, op);
  }
  try {
    await depmodFor(ctx, t.kernel);
  } catch (e) {
    // Journaled first: a roll-back whose own depmod fails (or is killed) is finished by recovery.
    op.rollingBack = true;
    await updateOp(ctx.roots.dkmsTree, op);
    const again = await finishRollback(ctx, m, t, op).then(
      () => null,
      (re: Error) => re,
    );
    throw new KbundleError(`depmod failed for kernel ${t.kernel}; the installation of ${m.module}/${m.version} was rolled back.`, ExitCode.InstallFailed, [
      String((e as Error).message),
      ...(again ? [`depmod after the roll-back failed too (${again.message}); the next kbundle command on this tree runs it again.`] : []),
    ]);
  }
  await endOp(ctx.roots.dkmsTree, op.id);
  return 'installed';
}

/**
 * Undo an install whose depmod failed — reinstalling the version it replaced,
 * if any — then depmod again; the op stays journaled until that succeeded.
 */
async function finishRollback(ctx: RunContext, m: ModuleRef, t: Target, op: InstallOp): Promise<'rolled-back'> {
  await rollbackInstall(ctx, m, t, op.decision!);
  const prev = op.replaced ? { module: m.module, version: op.replaced.version } : null;
  if (prev && (await isDir(kernelArchDir(ctx.roots, prev, t))) && !(await isInstalled(ctx.roots, prev, t))) {
    ctx.say(`Reinstalling ${prev.module}/${prev.version}, which the failed install replaced.`);
    await installTarget(ctx, prev, t, op.replaced!.selection, op.replaced!.bundleDigest);
  } else await depmodFor(ctx, t.kernel);
  await endOp(ctx.roots.dkmsTree, op.id);
  return 'rolled-back';
}

async function rollbackInstall(ctx: RunContext, m: ModuleRef, t: Target, d: InstallDecision): Promise<void> {
  await removeDurable(installedLink(ctx.roots, m.module, t));
  for (const f of d.files) await removeDurable(f.installPath);
  // Directories this install created (deepest first), so the tree is as before.
  for (const dir of d.createdDirs ?? []) await removeIfEmpty(dir);
  await removeDurable(installRecordPath(ctx.roots, m, t));
  await restoreOriginals(originalModuleDir(ctx.roots, m.module, t));
}

export async function uninstallTarget(ctx: RunContext, m: ModuleRef, t: Target, opts: { depmod?: boolean } = {}, resume?: UninstallOp): Promise<boolean> {
  let op: UninstallOp;
  if (resume) op = resume;
  else {
    if (!(await isInstalled(ctx.roots, m, t))) {
      ctx.say(`Module ${m.module}/${m.version} is not installed for kernel ${t.kernel} (${t.arch}). Skipping...`);
      return false;
    }
    ctx.say(`Module ${m.module}/${m.version} for kernel ${t.kernel} (${t.arch}).`);
    const record = await readJsonRecord<InstallRecord>(installRecordPath(ctx.roots, m, t));
    const paths = record ? record.files.map((f) => f.path) : (await placedModules(ctx, m, t)).map((p) => p.installPath);
    op = await beginOp(ctx.roots.dkmsTree, { ...opBase(ctx, m), kind: 'uninstall', kernel: t.kernel, arch: t.arch, paths, depmod: opts.depmod !== false });
  }
  // The marker goes first: readers of a half-done uninstall see "built".
  await removeDurable(installedLink(ctx.roots, m.module, t));
  for (const p of op.paths) {
    if (await pathExists(p)) ctx.say(`Deleting ${p}`);
    await removeDurable(p);
  }
  await removeDurable(installRecordPath(ctx.roots, m, t));
  for (const restored of await restoreOriginals(originalModuleDir(ctx.roots, m.module, t))) ctx.say(`Restoring original module ${restored}`);
  if (!op.postRemoveDone) {
    try {
      const conf = await evaluateFor(ctx, m, t);
      await runModuleScript(ctx, 'post_remove', conf.postRemove, await sourceDirOf(ctx, m));
    } catch (e) {
      ctx.warn(`post_remove not run: ${(e as Error).message}`);
    }
    op.postRemoveDone = true;
    await updateOp(ctx.roots.dkmsTree, op);
  }
  // A failed depmod keeps the op: the module is gone but modules.dep may still list it, so recovery runs depmod again.
  if (op.depmod) await depmodFor(ctx, t.kernel);
  await endOp(ctx.roots.dkmsTree, op.id);
  return true;
}

/** Deletes a built <k>/<a> (after uninstalling it); DKMS leaves no empty <m>/<v>/<k> behind, and remove decides "no kernel left" by it. */
async function dropBuilt(ctx: RunContext, m: ModuleRef, t: Target): Promise<void> {
  await removeDurable(kernelArchDir(ctx.roots, m, t));
  await removeIfEmpty(dirname(kernelArchDir(ctx.roots, m, t)));
}

const isKernelDir = (n: string) => /^[0-9]+\./.test(n);

/**
 * unbuild (forgetVersion false) or remove (true) of `targets`: uninstall and
 * delete each built kernel; remove then forgets the version once no kernel
 * is left. Journaled as one op, finished by recovery.
 */
export async function removeTargets(ctx: RunContext, m: ModuleRef, targets: Target[], forgetVersion: boolean, resume?: RemoveOp): Promise<void> {
  const op =
    resume ??
    (await beginOp(ctx.roots.dkmsTree, { ...opBase(ctx, m), kind: 'remove', targets: targets.map((t) => ({ kernel: t.kernel, arch: t.arch })), forgetVersion }));
  for (const t of op.targets) {
    if (await isDir(kernelArchDir(ctx.roots, m, t))) await uninstallTarget(ctx, m, t);
    await dropBuilt(ctx, m, t);
  }
  if (op.forgetVersion) {
    const vdir = versionDir(ctx.roots, m);
    const kernels = (await readdir(vdir).catch(() => [] as string[])).filter(isKernelDir);
    if (kernels.length === 0) {
      if (await pathExists(vdir)) ctx.say(`Deleting module ${m.module}/${m.version} completely from the DKMS tree.`);
      await removeDurable(vdir);
      await removeIfEmpty(moduleDir(ctx.roots, m.module));
    }
  }
  await endOp(ctx.roots.dkmsTree, op.id);
}

export async function unbuildTarget(ctx: RunContext, m: ModuleRef, t: Target): Promise<void> {
  await removeTargets(ctx, m, [t], false);
}
