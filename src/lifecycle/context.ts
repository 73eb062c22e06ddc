/**
 * What every lifecycle command needs: the roots, the options that shape a
 * run, and a way to evaluate a module's dkms.conf for one kernel.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ConfContext, EvaluatedConf } from '../conf/types.js';
import { destLocationForDistro, type OsRelease } from '../conf/evaluate.js';
import { loadConf } from '../conf/load.js';
import type { Progress } from '../progress/progress.js';
import { sourceLink, type ModuleRef, type Roots, type Target } from '../tree/paths.js';

export interface FrameworkSettings {
  signFile?: string;
  mokSigningKey?: string;
  mokCertificate?: string;
  parallelJobs?: number;
  /** Overrides the kernel's CONFIG_MODULE_SIG_HASH (bundle manifests name their hash). */
  signHash?: string;
}

export interface RunContext {
  roots: Roots;
  /** /etc/dkms or a replacement: framework.conf, <m>.conf overrides, no-autoinstall. */
  etcDir: string;
  framework: FrameworkSettings;
  /** Total make job budget (-j), shared by concurrent kernel builds. */
  jobs: number;
  force: boolean;
  noCache: boolean;
  cacheDir: string;
  /** --kernelsourcedir: headers dir for every kernel of this run. */
  kernelSourceDir?: string;
  noDepmod: boolean;
  quiet: boolean;
  verbose: boolean;
  /** os-release of the system whose tree we install into; decides DKMS's DEST_MODULE_LOCATION override. */
  osRelease: OsRelease | null;
  directives: string[];
  /** -c: alternative dkms.conf. */
  confOverride?: string;
  progress: Progress;
  /** Lines for the user (stdout); silenced by -q. */
  say(line: string): void;
  warn(line: string): void;
}

/** DKMS's default is <install_tree>/<k>/build; kbundle falls back to the system's headers when a scratch install tree has none. */
export function kernelSourceDirFor(ctx: RunContext, kernel: string): string {
  if (ctx.kernelSourceDir) return ctx.kernelSourceDir;
  const own = join(ctx.roots.installTree, kernel, 'build');
  if (existsSync(own)) return own;
  return join('/lib/modules', kernel, 'build');
}

export function confContext(ctx: RunContext, m: ModuleRef, t: Target, confPath?: string): ConfContext {
  return {
    confPath: confPath ?? ctx.confOverride ?? join(sourceLink(ctx.roots, m), 'dkms.conf'),
    kernelver: t.kernel,
    arch: t.arch,
    kernelSourceDir: kernelSourceDirFor(ctx, t.kernel),
    dkmsTree: ctx.roots.dkmsTree,
    sourceTree: ctx.roots.sourceTree,
    installTree: ctx.roots.installTree,
    module: m.module,
    moduleVersion: m.version,
    overridesDir: ctx.etcDir,
    directives: ctx.directives,
    parallelJobs: ctx.jobs,
  };
}

export function evaluateFor(ctx: RunContext, m: ModuleRef, t: Target, confPath?: string): Promise<EvaluatedConf> {
  return loadConf(confContext(ctx, m, t, confPath));
}

/** Where a module with this DEST_MODULE_LOCATION lands under <installTree>/<k>. */
export function installedLocation(ctx: RunContext, destLocation: string): string {
  return ctx.osRelease ? destLocationForDistro(destLocation, ctx.osRelease) : destLocation;
}
