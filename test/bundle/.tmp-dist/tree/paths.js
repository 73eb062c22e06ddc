/**
 * The DKMS tree layout (dkms-reference.md §4). Every path kbundle touches is
 * derived here from three configurable roots, so tests run in scratch dirs
 * and a tree written by real dkms reads the same.
 */
import { join } from 'node:path';
export const moduleDir = (r, m) => join(r.dkmsTree, m);
export const versionDir = (r, m) => join(r.dkmsTree, m.module, m.version);
export const sourceLink = (r, m) => join(versionDir(r, m), 'source');
export const sourceDir = (r, m) => join(r.sourceTree, `${m.module}-${m.version}`);
/** DKMS's single scratch dir; `add` creates it, DKMS builds in it. */
export const buildDir = (r, m) => join(versionDir(r, m), 'build');
/**
 * kbundle builds kernels concurrently, so each (kernel, arch) gets its own
 * scratch dir next to DKMS's `build`. The name cannot collide with a kernel
 * dir: DKMS only treats entries starting with a digit as kernels.
 */
export const kernelBuildDir = (r, m, t) => join(versionDir(r, m), `build-${t.kernel}-${t.arch}`);
export const kernelArchDir = (r, m, t) => join(versionDir(r, m), t.kernel, t.arch);
export const builtModulesDir = (r, m, t) => join(kernelArchDir(r, m, t), 'module');
export const makeLogPath = (r, m, t) => join(kernelArchDir(r, m, t), 'log', 'make.log');
/** kbundle's own record of an install (where each module went, how it was chosen). */
export const installRecordPath = (r, m, t) => join(kernelArchDir(r, m, t), '.kbundle-install.json');
/** Relative symlink <m>/kernel-<k>-<a> -> <v>/<k>/<a>: DKMS's "installed" marker. */
export const installedLink = (r, m, t) => join(moduleDir(r, m), `kernel-${t.kernel}-${t.arch}`);
export const installedLinkTarget = (m, t) => join(m.version, t.kernel, t.arch);
export const originalModuleDir = (r, m, t) => join(moduleDir(r, m), 'original_module', t.kernel, t.arch);
export const kernelInstallDir = (r, kernel) => join(r.installTree, kernel);
