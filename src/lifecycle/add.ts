/**
 * add: register /usr/src/<m>-<v> in the DKMS tree (source symlink + build
 * dir), like DKMS's add_module. `add DIR` or `add DIR/dkms.conf` first copies
 * the tree to <sourcetree>/<PACKAGE_NAME>-<PACKAGE_VERSION>.
 */
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdir, readlink, realpath, rm, symlink } from 'node:fs/promises';
import { beginOp, endOp } from '../recovery/journal.js';
import { opBase, type AddOp } from '../recovery/ops.js';
import { commitStagedDir, mkdirDurable, removeDurable, renameDurable, stagingDirFor, symlinkDurable, syncTree, tempPathFor } from '../util/atomic.js';
import { isDir } from '../util/fs.js';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { loadConf } from '../conf/load.js';
import { buildDir, sourceDir, sourceLink, versionDir, type ModuleRef, type Target } from '../tree/paths.js';
import { addedState } from '../tree/scan.js';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';
import { confContext, type RunContext } from './context.js';
import { runModuleScript } from './scripts.js';

const run = promisify(execFile);

/** Reads PACKAGE_NAME/PACKAGE_VERSION of a conf outside the tree (for `add DIR`). */
export async function identifyConf(ctx: RunContext, confPath: string, t: Target): Promise<ModuleRef> {
  const conf = await loadConf({ ...confContext(ctx, { module: '', version: '' }, t, confPath), module: undefined, moduleVersion: undefined });
  return { module: conf.name, version: conf.version };
}

/** `add PATH`: copy a source dir into the source tree, return the module it holds. */
export async function addFromPath(ctx: RunContext, path: string, t: Target): Promise<ModuleRef> {
  const abs = resolve(path);
  const isConf = existsSync(abs) && statSync(abs).isFile();
  const dir = isConf ? dirname(abs) : abs;
  const confPath = isConf ? abs : join(dir, 'dkms.conf');
  if (!existsSync(confPath)) throw new KbundleError(`Arguments <path> and <tarball> are not supported by this command: no dkms.conf in ${dir}.`, ExitCode.NoConf);
  const m = await identifyConf(ctx, confPath, t);
  const dest = sourceDir(ctx.roots, m);
  if ((await realpath(dir)) !== (existsSync(dest) ? await realpath(dest) : dest)) {
    if (existsSync(dest)) {
      if (!ctx.force) throw new KbundleError(`${dest} already exists; use --force to replace it with ${dir}.`, ExitCode.NotInTree);
      await removeDurable(dest);
    }
    // Copied under a temp name and renamed: a killed copy never looks like a module source.
    const tmp = tempPathFor(dest);
    await mkdirDurable(ctx.roots.sourceTree);
    try {
      await run('cp', ['-a', dir, tmp]);
      await syncTree(tmp);
      await renameDurable(tmp, dest);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
  }
  return m;
}

export async function addModule(ctx: RunContext, m: ModuleRef, t: Target, resume?: AddOp): Promise<'added' | 'already-added'> {
  const state = await addedState(ctx.roots, m);
  if (resume && state === 'added') {
    await endOp(ctx.roots.dkmsTree, resume.id);
    return 'already-added';
  }
  const src = sourceDir(ctx.roots, m);
  if (state === 'added') {
    // Same source again is harmless (build/install add implicitly).
    try {
      if ((await readlink(sourceLink(ctx.roots, m))) === src) return 'already-added';
    } catch {
      // fall through to the error
    }
    throw new KbundleError(`DKMS tree already contains: ${m.module}/${m.version}\nYou cannot add the same module/version combo more than once.`, ExitCode.NotInTree);
  }
  if (!existsSync(join(src, 'dkms.conf'))) {
    throw new KbundleError(`Could not find module source directory ${src} (it must hold a dkms.conf).`, ExitCode.Usage);
  }
  const conf = await loadConf(confContext(ctx, m, t, join(src, 'dkms.conf')));
  if (conf.name !== m.module || conf.version !== m.version) {
    throw new KbundleError(
      `${join(src, 'dkms.conf')} declares ${conf.name}/${conf.version}, not ${m.module}/${m.version}.`,
      ExitCode.BadConf,
    );
  }
  const op = resume ?? (await beginOp(ctx.roots.dkmsTree, { ...opBase(ctx, m), kind: 'add', kernel: t.kernel, arch: t.arch }));
  ctx.say(`Creating symlink ${sourceLink(ctx.roots, m)} -> ${src}`);
  const vdir = versionDir(ctx.roots, m);
  if (await isDir(vdir)) {
    // A version dir without a (working) source link: repair it in place, it may hold builds.
    await mkdirDurable(buildDir(ctx.roots, m));
    await symlinkDurable(src, sourceLink(ctx.roots, m));
  } else {
    // Published by one rename, so the tree never shows a version without its source link.
    const staging = await stagingDirFor(vdir);
    await mkdir(join(staging, 'build'));
    await symlink(src, join(staging, 'source'));
    await commitStagedDir(staging, vdir);
  }
  const rc = await runModuleScript(ctx, 'post_add', conf.postAdd, src);
  if (rc !== 0) ctx.warn(`The post_add script exited ${rc}.`);
  await endOp(ctx.roots.dkmsTree, op.id);
  return 'added';
}

export async function requireAdded(ctx: RunContext, m: ModuleRef): Promise<void> {
  const state = await addedState(ctx.roots, m);
  if (state === 'added') return;
  if (state === 'broken') {
    throw new KbundleError(`${m.module}/${m.version}: broken: the source directory or the symbolic link ${sourceLink(ctx.roots, m)} pointing to it is missing.`, ExitCode.BadAction);
  }
  throw new KbundleError(`The module/version combo ${m.module}/${m.version} is not located in the DKMS tree (${versionDir(ctx.roots, m)}).`, ExitCode.NotInTree);
}
