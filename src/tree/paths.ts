/**
 * The DKMS tree layout (docs/dkms-compat.md, "The DKMS tree"). Every path kbundle touches is
 * derived here from three configurable roots, so tests run in scratch dirs
 * and a tree written by real dkms reads the same.
 */
import { join } from 'node:path';

export interface Roots {
  /** DKMS state tree, default /var/lib/dkms. */
  dkmsTree: string;
  /** Module sources, default /usr/src (<m>-<v>/dkms.conf). */
  sourceTree: string;
  /** Installed kernel modules, default /lib/modules. */
  installTree: string;
}

export interface ModuleRef {
  module: string;
  version: string;
}

export interface Target {
  kernel: string;
  arch: string;
}

export const moduleDir = (r: Roots, m: string) => join(r.dkmsTree, m);
export const versionDir = (r: Roots, m: ModuleRef) => join(r.dkmsTree, m.module, m.version);
export const sourceLink = (r: Roots, m: ModuleRef) => join(versionDir(r, m), 'source');
export const sourceDir = (r: Roots, m: ModuleRef) => join(r.sourceTree, `${m.module}-${m.version}`);
/** DKMS's single scratch dir; `add` creates it, DKMS builds in it. */
export const buildDir = (r: Roots, m: ModuleRef) => join(versionDir(r, m), 'build');
/**
 * kbundle builds kernels concurrently, so each (kernel, arch) gets its own
 * scratch dir next to DKMS's `build`. The name cannot collide with a kernel
 * dir: DKMS only treats entries starting with a digit as kernels.
 */
export const kernelBuildDir = (r: Roots, m: ModuleRef, t: Target) =>
  join(versionDir(r, m), `build-${t.kernel}-${t.arch}`);
export const kernelArchDir = (r: Roots, m: ModuleRef, t: Target) => join(versionDir(r, m), t.kernel, t.arch);
export const builtModulesDir = (r: Roots, m: ModuleRef, t: Target) => join(kernelArchDir(r, m, t), 'module');
export const makeLogPath = (r: Roots, m: ModuleRef, t: Target) => join(kernelArchDir(r, m, t), 'log', 'make.log');
/** kbundle's own record of an install (where each module went, how it was chosen). */
export const installRecordPath = (r: Roots, m: ModuleRef, t: Target) => join(kernelArchDir(r, m, t), '.kbundle-install.json');
/** Relative symlink <m>/kernel-<k>-<a> -> <v>/<k>/<a>: DKMS's "installed" marker. */
export const installedLink = (r: Roots, m: string, t: Target) => join(moduleDir(r, m), `kernel-${t.kernel}-${t.arch}`);
export const installedLinkTarget = (m: ModuleRef, t: Target) => join(m.version, t.kernel, t.arch);
export const originalModuleDir = (r: Roots, m: string, t: Target) => join(moduleDir(r, m), 'original_module', t.kernel, t.arch);
export const kernelInstallDir = (r: Roots, kernel: string) => join(r.installTree, kernel);
