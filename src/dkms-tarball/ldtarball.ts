/**
 * ldtarball: load a DKMS tarball (kbundle's or dkms's). Unlike DKMS, every
 * dkms_main_tree/<k>/<a> is loaded (3.x loads only the first, and --force
 * makes the second overwrite the first), a plain source tarball works (3.0.10
 * rejects it), and a binaries-only load shows up in status and exits 0.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { commitStagedDir, copyFileDurable, mkdirDurable, removeDurable, stagingDirFor } from '../util/atomic.js';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { addModule, identifyConf } from '../lifecycle/add.js';
import type { RunContext } from '../lifecycle/context.js';
import { kernelArchDir, sourceDir, sourceLink, versionDir, type ModuleRef, type Target } from '../tree/paths.js';
import { addedState } from '../tree/scan.js';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';
import { isDir } from '../util/fs.js';

const run = promisify(execFile);

async function findConf(dir: string): Promise<string | null> {
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
  if (entries.some((e) => e.isFile() && e.name === 'dkms.conf')) return join(dir, 'dkms.conf');
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const found = await findConf(join(dir, e.name));
    if (found) return found;
  }
  return null;
}

export interface LoadResult {
  module: ModuleRef;
  loaded: Target[];
  skipped: Target[];
}

export async function ldtarball(ctx: RunContext, archive: string, t: Target): Promise<LoadResult> {
  const file = resolve(archive);
  if (!existsSync(file)) throw new KbundleError(`The archive ${file} does not exist.`, ExitCode.Usage);
  const tmp = await mkdtemp(join(tmpdir(), 'kbundle-ldtarball-'));
  try {
    // GNU tar refuses members with ".." and strips leading "/", so nothing lands outside tmp.
    await run('tar', ['-xaf', file, '-C', tmp, '--no-same-owner', '--no-same-permissions']).catch((e: Error) => {
      throw new KbundleError(`Cannot extract ${file}: ${e.message}`, ExitCode.NotInTree);
    });
    const identify = (conf: string) => identifyConf(ctx, conf, t);

    if (!(await isDir(join(tmp, 'dkms_main_tree')))) {
      const conf = await findConf(tmp);
      if (!conf) throw new KbundleError(`Could not find a dkms.conf in ${file}.`, ExitCode.NotInTree);
      const m = await identify(conf);
      await installSource(ctx, m, dirname(conf));
      await addModule(ctx, m, t);
      return { module: m, loaded: [], skipped: [] };
    }

    let m: ModuleRef;
    if (existsSync(join(tmp, 'dkms_source_tree', 'dkms.conf'))) {
      m = await identify(join(tmp, 'dkms_source_tree', 'dkms.conf'));
      const state = await addedState(ctx.roots, m);
      if (state === 'added' && !ctx.force) {
        ctx.say(`Module ${m.module}/${m.version} is already added; loading only the binaries it lacks.`);
      } else {
        await installSource(ctx, m, join(tmp, 'dkms_source_tree'));
        if (state !== 'added') await addModule(ctx, m, t);
      }
    } else if (existsSync(join(tmp, 'dkms_binaries_only', 'dkms.conf'))) {
      m = await identify(join(tmp, 'dkms_binaries_only', 'dkms.conf'));
      if ((await addedState(ctx.roots, m)) !== 'added') {
        if (existsSync(join(sourceDir(ctx.roots, m), 'dkms.conf'))) {
          await addModule(ctx, m, t);
        } else {
          // No source anywhere: DKMS keeps the conf in a real source/ dir (binaries-only).
          await copyFileDurable(join(tmp, 'dkms_binaries_only', 'dkms.conf'), join(sourceLink(ctx.roots, m), 'dkms.conf'));
          await mkdirDurable(join(versionDir(ctx.roots, m), 'build'));
        }
      }
    } else {
      throw new KbundleError(`${file} has dkms_main_tree/ but neither dkms_source_tree/dkms.conf nor dkms_binaries_only/dkms.conf.`, ExitCode.BuiltModuleMissing);
    }

    const loaded: Target[] = [];
    const skipped: Target[] = [];
    const main = join(tmp, 'dkms_main_tree');
    for (const kernel of (await readdir(main)).sort()) {
      if (!(await isDir(join(main, kernel)))) continue;
      for (const arch of (await readdir(join(main, kernel))).sort()) {
        const target = { kernel, arch };
        const dest = kernelArchDir(ctx.roots, m, target);
        if (existsSync(dest) && !ctx.force) {
          ctx.say(`${dest} already exists. Skipping...`);
          skipped.push(target);
          continue;
        }
        // Copied privately, published by one rename: a killed load never leaves a half-built kernel.
        const staging = await stagingDirFor(dest);
        await cp(join(main, kernel, arch), staging, { recursive: true, verbatimSymlinks: true });
        await commitStagedDir(staging, dest);
        ctx.say(`Loading ${m.module}/${m.version} for kernel ${kernel} (${arch}) into ${dest}`);
        loaded.push(target);
      }
    }
    return { module: m, loaded, skipped };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

async function installSource(ctx: RunContext, m: ModuleRef, from: string): Promise<void> {
  const dest = sourceDir(ctx.roots, m);
  if (existsSync(dest)) {
    if (!ctx.force) {
      ctx.say(`${dest} already exists; keeping it (use --force to replace it with the tarball's source).`);
      return;
    }
    await removeDurable(dest);
  }
  const staging = await stagingDirFor(dest);
  await cp(from, staging, { recursive: true, verbatimSymlinks: true });
  await commitStagedDir(staging, dest);
}
