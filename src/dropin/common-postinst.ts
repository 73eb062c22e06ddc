/**
 * Debian's /usr/lib/dkms/common.postinst, done by kbundle in one process.
 * Every *-dkms package's postinst runs it as
 *   common.postinst NAME VERSION /usr/share/<pkg> ARCH PREVIOUS-VERSION
 * and the steps, lines and exit codes here are the script's (dkms 3.0.10):
 * remove any old copy of NAME/VERSION, load it (tarball or /usr/src), choose
 * the kernels, then per kernel build unless built ("Skipped." on 77, stop with
 * the build's code on any other failure) and install unless installed.
 *
 * One difference, in time only: the builds the loop will ask for are started
 * together before it runs (a build does not depend on another kernel's
 * install), and a build the loop never reaches because an earlier kernel
 * failed is unbuilt again, so the tree ends exactly as the script leaves it.
 */
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import type { TargetOutcome } from '../lifecycle/build.js';
import type { RunContext } from '../lifecycle/context.js';
import type { ModuleRef, Target } from '../tree/paths.js';
import { sourceLink, versionDir } from '../tree/paths.js';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';
import { buildingForLine, chooseKernels, newestKernel } from './kernels.js';

export interface PostinstArgs {
  name?: string;
  version?: string;
  tarballRoot?: string;
  arch?: string;
  upgrade?: string;
}

/** The dkms commands the script runs, each as `dkms <cmd>` would (printing what it prints) and returning its exit code. */
export interface DkmsSteps {
  remove(m: ModuleRef): Promise<number>;
  ldtarball(archive: string): Promise<number>;
  add(m: ModuleRef): Promise<number>;
  /** The line `dkms status -m -v -k [-a]` prints ('' when none). */
  status(m: ModuleRef, kernel: string, arch?: string): Promise<string>;
  install(m: ModuleRef, t: Target): Promise<number>;
  /** Runs the builds concurrently, printing nothing. */
  buildAll(m: ModuleRef, targets: Target[]): Promise<TargetOutcome[]>;
  /** Prints a failed build's error as `dkms build` does. */
  reportBuildError(e: KbundleError): void;
  /** Puts a kernel the script never reached back to unbuilt. */
  unbuild(m: ModuleRef, t: Target): Promise<void>;
}

export interface PostinstEnv {
  ctx: RunContext;
  etcDir: string;
  bootDir: string;
  /** framework.conf's autoinstall_all_kernels. */
  autoinstallAllKernels: boolean;
  hostArch: string;
  out: (line: string) => void;
}

const headersPresent = (ctx: RunContext, kernel: string) => existsSync(join(ctx.roots.installTree, kernel, 'build', 'include'));

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export async function commonPostinst(a: PostinstArgs, env: PostinstEnv, dkms: DkmsSteps): Promise<number> {
  const { ctx, out } = env;
  if (!a.name || !a.version) {
    out('Need NAME, and VERSION defined');
    out('ARCH is optional');
    return 1;
  }
  if (existsSync(join(env.etcDir, 'no-autoinstall'))) {
    out('autoinstall for dkms modules has been disabled.');
    return 0;
  }
  const m: ModuleRef = { module: a.name, version: a.version };
  const installed = listDir(ctx.roots.installTree);
  const current = release();

  // "We never want to keep an older version side by side to prevent conflicts"
  if (existsSync(versionDir(ctx.roots, m))) {
    out(`Removing old ${m.module}-${m.version} DKMS files...`);
    const rc = await dkms.remove(m);
    if (rc !== 0) return rc;
  }
  const tarball = join(a.tarballRoot ?? '', `${m.module}-${m.version}.dkms.tar.gz`);
  if (a.tarballRoot !== undefined && existsSync(tarball)) {
    if ((await dkms.ldtarball(tarball)) !== 0) {
      for (const l of ['', '', `Unable to load DKMS tarball ${tarball}.`, 'Common causes include: ', ' - You must be using DKMS 2.1.0.0 or later to support binaries only', '   distribution specific archives.', ' - Corrupt distribution specific archive', '', '']) out(l);
      return 2;
    }
  } else if (existsSync(join(ctx.roots.sourceTree, `${m.module}-${m.version}`))) {
    out(`Loading new ${m.module}-${m.version} DKMS files...`);
    const rc = await dkms.add(m);
    if (rc !== 0) return rc;
  }

  const configs = listDir(env.bootDir).filter((n) => n.startsWith('config-')).sort().map((n) => n.slice('config-'.length));
  let newest = newestKernel(configs, current);
  if (newest && !existsSync(join(ctx.roots.installTree, newest))) newest = '';
  const choice = chooseKernels({ installed, current, newest, allKernels: env.autoinstallAllKernels, upgrade: Boolean(a.upgrade) });
  for (const n of choice.notes) out(n);
  out(buildingForLine(choice));

  const arch = a.arch || undefined;
  if (arch) out(`Building for architecture ${arch}`);
  const targetArch = arch ?? env.hostArch;

  // Which kernels the loop will build: decided from the tree as it is now, which the loop's own steps do not change for other kernels.
  const sourceLinked = isSymlink(sourceLink(ctx.roots, m));
  const wanted: Target[] = [];
  const before = new Map<string, string>();
  for (const kernel of choice.kernels) {
    const line = await dkms.status(m, kernel, arch);
    before.set(kernel, line);
    if (kernel.includes('BOOT') || line.includes(': built')) continue;
    if (sourceLinked && headersPresent(ctx, kernel)) wanted.push({ kernel, arch: targetArch });
  }
  const outcomes = new Map((await dkms.buildAll(m, wanted)).map((o) => [o.target.kernel, o]));

  for (const [i, kernel] of choice.kernels.entries()) {
    let line = before.get(kernel)!;
    if (kernel.includes('BOOT')) {
      for (const l of ['', `Module build and install for ${kernel} was skipped as `, 'it is a BOOT variant']) out(l);
      continue;
    }
    if (!line.includes(': built')) {
      if (!sourceLinked) {
        for (const l of ['This package appears to be a binaries-only package', ` you will not be able to build against kernel ${kernel}`, ' since the package source was not provided']) out(l);
        continue;
      }
      if (headersPresent(ctx, kernel)) {
        out(`Building initial module for ${kernel}`);
        const o = outcomes.get(kernel)!;
        if (o.error?.exitCode === ExitCode.Excluded) {
          out('Skipped.');
          continue;
        }
        if (o.error) {
          dkms.reportBuildError(o.error);
          // The script stops here: kernels after this one were never built.
          for (const later of choice.kernels.slice(i + 1)) {
            if (outcomes.get(later)?.result) await dkms.unbuild(m, { kernel: later, arch: targetArch });
          }
          return o.error.exitCode;
        }
        out('Done.');
        line = await dkms.status(m, kernel, arch);
      } else {
        out(`Module build for kernel ${kernel} was skipped since the`);
        out('kernel headers for this kernel do not seem to be installed.');
      }
    }
    if (line.includes(': built') && !line.includes(': installed')) {
      const rc = await dkms.install(m, { kernel, arch: targetArch });
      if (rc !== 0) return rc;
    }
  }
  return 0;
}

