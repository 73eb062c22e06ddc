/** A manifest's kernels paired with the arch of their headers (pair.ts), reading each tree's .config. */
import type { Manifest, ResolvedKernel } from '../manifest/types.js';
import { hostArch } from './arch.js';
import { archOfHeaders } from './headers-arch.js';
import { pairKernels, type Pair } from './pair.js';

export function pairManifestKernels(m: Pick<Manifest, 'arches' | 'file'>, kernels: ResolvedKernel[]): Pair[] {
  return pairKernels(
    kernels.map((k) => ({ ...k, arch: archOfHeaders(k.headers) })),
    m.arches,
    hostArch(),
    m.file,
  );
}
