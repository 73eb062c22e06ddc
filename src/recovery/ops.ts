/**
 * What the journal records for each kind of mutating step. Each op carries
 * the facts of the run that started it (roots, os-release, options), so a
 * recovery started by another command — `status` on the host, say — decides
 * exactly what the interrupted run would have (same install paths, same
 * originals).
 */
import type { RunContext } from '../lifecycle/context.js';
import type { Roots } from '../tree/paths.js';
import type { InstallRecord } from '../tree/records.js';

/** The serialisable part of a RunContext: everything that shapes a decision, nothing that talks. */
export type ContextRecord = Pick<
  RunContext,
  'roots' | 'etcDir' | 'framework' | 'jobs' | 'force' | 'noCache' | 'cacheDir' | 'kernelSourceDir' | 'noDepmod' | 'osRelease' | 'directives' | 'confOverride'
>;

export function recordContext(ctx: RunContext): ContextRecord {
  const { roots, etcDir, framework, jobs, force, noCache, cacheDir, kernelSourceDir, noDepmod, osRelease, directives, confOverride } = ctx;
  return { roots, etcDir, framework, jobs, force, noCache, cacheDir, kernelSourceDir, noDepmod, osRelease, directives, confOverride };
}

/** A context that decides as the recorded run did, talking through the current one. */
export function contextFromRecord(rec: ContextRecord, io: RunContext): RunContext {
  return { ...io, ...rec };
}

interface OpBase {
  id: string;
  pid: number;
  startedAt: string;
  ctx: ContextRecord;
  module: string;
  version: string;
}

export interface TargetFields {
  kernel: string;
  arch: string;
}

/** Where each module goes and which distribution originals it displaces, decided once. */
export interface InstallDecision {
  files: Array<{ destName: string; builtFile: string; installPath: string }>;
  /** Per file: the distribution modules to archive (only when no archive existed before). */
  originals: Array<{ destName: string; paths: string[] }>;
  firstInstall: boolean;
  /** Directories under <installTree>/<k> the files need that did not exist (deepest first): a roll-back removes them. */
  createdDirs?: string[];
}

/** Core install of a built (module, kernel, arch): rolled forward. */
export interface InstallOp extends OpBase, TargetFields {
  kind: 'install';
  selection: InstallRecord['selection'];
  bundleDigest?: string;
  decision?: InstallDecision;
  postInstallDone?: boolean;
  /** The version this install uninstalled first (an upgrade); a roll-back reinstalls it. */
  replaced?: { version: string; selection: InstallRecord['selection']; bundleDigest?: string };
  /** depmod failed: the install is being undone (recovery finishes the roll-back). */
  rollingBack?: boolean;
}

/** Core uninstall: rolled forward. */
export interface UninstallOp extends OpBase, TargetFields {
  kind: 'uninstall';
  paths: string[];
  depmod: boolean;
  postRemoveDone?: boolean;
}

/** unbuild / remove of several kernels: rolled forward. */
export interface RemoveOp extends OpBase {
  kind: 'remove';
  targets: TargetFields[];
  /** remove (true) also forgets the version once no kernel is left; unbuild (false) does not. */
  forgetVersion: boolean;
}

/** A build in progress: nothing is visible until its staging dir is renamed, so it is rolled back. */
export interface BuildOp extends OpBase, TargetFields {
  kind: 'build';
  staging: string;
  buildDir: string;
}

/** add: the version dir is published by one rename; recovery finishes it (post_add included) when the source is there. */
export interface AddOp extends OpBase, TargetFields {
  kind: 'add';
}

/** A bundle install (src/deploy/): rolled forward from the stored bundle, else back. */
export interface BundleInstallOp {
  kind: 'bundle-install';
  id: string;
  pid: number;
  startedAt: string;
  ctx?: ContextRecord;
  rootDigest: string;
  /** Stored bundle, relative to the DKMS tree. */
  bundle: string;
  root: string;
  roots: Roots;
  kernel: string;
  arch: string;
  packages: Array<{
    package: string;
    version: string;
    /** What existed before, so a roll-back removes only what this install created. */
    sourceExisted: boolean;
    versionDirExisted: boolean;
    installPaths: string[];
  }>;
}

export type JournalOp = InstallOp | UninstallOp | RemoveOp | BuildOp | AddOp | BundleInstallOp;

/** What callers pass to beginOp: an op without id (one is made) — or with one, on replay. */
export type OpInput = JournalOp extends infer T ? (T extends JournalOp ? Omit<T, 'id'> & { id?: string } : never) : never;

export function opBase(ctx: RunContext, m: { module: string; version: string }): Omit<OpBase, 'id'> {
  return { pid: process.pid, startedAt: new Date().toISOString(), ctx: recordContext(ctx), module: m.module, version: m.version };
}

export function describeOp(op: JournalOp): string {
  switch (op.kind) {
    case 'bundle-install':
      return `bundle install of ${op.packages.map((p) => `${p.package}/${p.version}`).join(', ')} on ${op.kernel} (${op.arch})`;
    case 'remove':
      return `${op.forgetVersion ? 'remove' : 'unbuild'} of ${op.module}/${op.version}`;
    case 'add':
      return `add of ${op.module}/${op.version}`;
    default:
      return `${op.kind} of ${op.module}/${op.version} on ${op.kernel} (${op.arch})`;
  }
}
