/**
 * install / uninstall of a built (module, kernel, arch). Order matters for a
 * crash: install writes module files (temp + rename) first and the
 * kernel-<k>-<a> link, DKMS's "installed" marker, last; uninstall removes the
 * marker first. depmod failure rolls the install back (DKMS exit 6).
 */
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { copyFile, mkdir, readdir, readlink, realpath, rename, rm, symlink, unlink } from 'node:fs/promises';
import { evaluateFor, type RunContext } from '../lifecycle/context.js';
import { runModuleScript } from '../lifecycle/scripts.js';
import {
  installRecordPath,
  installedLink,
  installedLinkTarget,
  kernelArchDir,
  kernelInstallDir,
  originalModuleDir,
  sourceLink,
  type ModuleRef,
  type Target,
} from '../tree/paths.js';
import { readJsonRecord, writeJsonRecord, type InstallRecord } from '../tree/records.js';
import { isInstalled } from '../tree/scan.js';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';
import { isDir, pathExists, sha256File, siblingTemp } from '../util/fs.js';
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

export type InstallResult = 'installed' | 'already-installed';

export async function installTarget(
  ctx: RunContext,
  m: ModuleRef,
  t: Target,
  selection: InstallRecord['selection'] = 'build',
  /** Root digest of the bundle the binaries came from (bundle installs). */
  bundleDigest?: string,
): Promise<InstallResult> {
  if (await isInstalled(ctx.roots, m, t)) {
    if (!ctx.force) {
      ctx.say(`Module ${m.module}/${m.version} already installed on kernel ${t.kernel} (${t.arch}), skip. You may override by specifying --force.`);
      return 'already-installed';
    }
    await uninstallTarget(ctx, m, t, { depmod: false });
  }
  const other = await installedVersion(ctx, m.module, t);
  if (other && other !== m.version) {
    ctx.say(`Uninstalling ${m.module}/${other} from kernel ${t.kernel} (${t.arch}) first.`);
    await uninstallTarget(ctx, { module: m.module, version: other }, t, { depmod: false });
  }
  if (!(await pathExists(kernelInstallDir(ctx.roots, t.kernel)))) {
    throw new KbundleError(`The directory ${kernelInstallDir(ctx.roots, t.kernel)} does not exist: kernel ${t.kernel} is not installed in ${ctx.roots.installTree}.`, ExitCode.InstallFailed);
  }
  const conf = await evaluateFor(ctx, m, t);
  const srcDir = await sourceDirOf(ctx, m);
  const rc = await runModuleScript(ctx, 'pre_install', conf.preInstall, srcDir);
  if (rc !== 0 && !ctx.force) {
    throw new KbundleError(`The pre_install script failed (exit ${rc}); the installation of ${m.module}/${m.version} was aborted.`, ExitCode.PreInstallFailed);
  }

  const placed = await placedModules(ctx, m, t);
  const archive = originalModuleDir(ctx.roots, m.module, t);
  const firstInstall = !(await isDir(archive));
  const record: InstallRecord = { format: 'kbundle-install-v1', files: [], selection, ...(bundleDigest ? { bundleDigest } : {}) };
  try {
    for (const p of placed) {
      ctx.say(`${p.destName}.ko:`);
      if (firstInstall) {
        const originals = await findOriginals(kernelInstallDir(ctx.roots, t.kernel), p.destName, p.installPath);
        if (originals.length) {
          ctx.say(` - Original module: archiving ${originals[0]}`);
          await archiveOriginals(originals, archive, kernelInstallDir(ctx.roots, t.kernel));
        }
      }
      ctx.say(` - Installing to ${p.installDir}/`);
      await mkdir(p.installDir, { recursive: true });
      const tmp = siblingTemp(p.installPath);
      await copyFile(p.builtFile, tmp);
      await rename(tmp, p.installPath);
      record.files.push({ destName: p.destName, path: p.installPath, sha256: await sha256File(p.installPath) });
    }
    await writeJsonRecord(installRecordPath(ctx.roots, m, t), record);
    const link = installedLink(ctx.roots, m.module, t);
    const tmpLink = `${link}.tmp-${randomBytes(4).toString('hex')}`;
    await symlink(installedLinkTarget(m, t), tmpLink);
    await rename(tmpLink, link);
  } catch (e) {
    await rollback(ctx, m, t, record);
    throw e;
  }
  await runModuleScript(ctx, 'post_install', conf.postInstall, srcDir);
  try {
    await depmodFor(ctx, t.kernel);
  } catch (e) {
    await rollback(ctx, m, t, record);
    throw new KbundleError(`depmod failed for kernel ${t.kernel}; the installation of ${m.module}/${m.version} was rolled back.`, ExitCode.InstallFailed, [String((e as Error).message)]);
  }
  return 'installed';
}

async function rollback(ctx: RunContext, m: ModuleRef, t: Target, record: InstallRecord): Promise<void> {
  await rm(installedLink(ctx.roots, m.module, t), { force: true });
  for (const f of record.files) await rm(f.path, { force: true });
  await rm(installRecordPath(ctx.roots, m, t), { force: true });
  await restoreOriginals(originalModuleDir(ctx.roots, m.module, t));
}

export async function uninstallTarget(ctx: RunContext, m: ModuleRef, t: Target, opts: { depmod?: boolean } = {}): Promise<boolean> {
  if (!(await isInstalled(ctx.roots, m, t))) {
    ctx.say(`Module ${m.module}/${m.version} is not installed for kernel ${t.kernel} (${t.arch}). Skipping...`);
    return false;
  }
  ctx.say(`Module ${m.module}/${m.version} for kernel ${t.kernel} (${t.arch}).`);
  // The marker goes first: an interrupted uninstall then reads as "built".
  await unlink(installedLink(ctx.roots, m.module, t));
  const record = await readJsonRecord<InstallRecord>(installRecordPath(ctx.roots, m, t));
  const paths = record ? record.files.map((f) => f.path) : (await placedModules(ctx, m, t)).map((p) => p.installPath);
  for (const p of paths) {
    ctx.say(`Deleting ${p}`);
    await rm(p, { force: true });
  }
  await rm(installRecordPath(ctx.roots, m, t), { force: true });
  for (const restored of await restoreOriginals(originalModuleDir(ctx.roots, m.module, t))) ctx.say(`Restoring original module ${restored}`);
  try {
    const conf = await evaluateFor(ctx, m, t);
    await runModuleScript(ctx, 'post_remove', conf.postRemove, await sourceDirOf(ctx, m));
  } catch (e) {
    ctx.warn(`post_remove not run: ${(e as Error).message}`);
  }
  if (opts.depmod !== false) await depmodFor(ctx, t.kernel);
  return true;
}

export async function unbuildTarget(ctx: RunContext, m: ModuleRef, t: Target): Promise<void> {
  await uninstallTarget(ctx, m, t);
  await rm(kernelArchDir(ctx.roots, m, t), { recursive: true, force: true });
  // DKMS leaves no empty <m>/<v>/<k> behind; remove decides "no kernel left" by it.
  const kdir = dirname(kernelArchDir(ctx.roots, m, t));
  if ((await readdir(kdir).catch(() => ['?'])).length === 0) await rm(kdir, { recursive: true, force: true });
}
