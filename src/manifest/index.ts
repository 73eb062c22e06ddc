export { loadManifest, parseManifest, SCHEMA_PATH } from './load.js';
export { resolveKernels, resolveKernelTargets, globToRegExp, releaseOrder } from './kernels.js';
export type { Manifest, KernelSelector, ResolvedKernel, RawManifest } from './types.js';
