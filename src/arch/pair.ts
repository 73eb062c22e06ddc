/**
 * Pairs each kernel of a manifest with the arch its headers are for. A
 * kernel tree builds modules for one arch only, so the matrix is not
 * kernels x arches but each kernel with its own arch, provided the manifest
 * lists it. Pure: the header arches are read by the caller.
 */
import { KbundleError } from '../util/errors.js';
import { canonicalArch } from './arch.js';
import { ExitCode } from '../util/exit-codes.js';

export interface KernelArch {
  release: string;
  headers: string;
  /** From the headers (archOfHeaders); null when they do not say. */
  arch: string | null;
}

export interface Pair {
  kernel: string;
  /** The manifest's spelling of the arch. */
  arch: string;
}

/**
 * Every (kernel, arch) to build. `fallback` is the arch assumed for headers
 * that do not say (the host's, as DKMS assumes). Refuses a kernel whose arch
 * the manifest does not list and a listed arch no kernel is for: either is a
 * manifest that does not build what its author thinks.
 */
export function pairKernels(kernels: KernelArch[], arches: string[], fallback: string, file = 'kbundle.yaml'): Pair[] {
  const listed = new Map(arches.map((a) => [canonicalArch(a), a]));
  const pairs: Pair[] = [];
  const used = new Set<string>();
  const strays: string[] = [];
  for (const k of kernels) {
    const a = canonicalArch(k.arch ?? fallback);
    const spelled = listed.get(a);
    if (!spelled) {
      strays.push(`${k.release} (${a}, headers ${k.headers})`);
      continue;
    }
    used.add(a);
    pairs.push({ kernel: k.release, arch: spelled });
  }
  if (strays.length) {
    throw new KbundleError(`${file}: kernel headers for an arch the manifest does not list in "arches" (${arches.join(', ')}): ${strays.join('; ')}`, ExitCode.ArchMismatch, [
      'Add the arch to "arches", or narrow the kernel patterns.',
    ]);
  }
  const unused = [...listed.entries()].filter(([c]) => !used.has(c)).map(([, s]) => s);
  if (unused.length) {
    throw new KbundleError(`${file}: no kernel in "kernels" has headers for arch ${unused.join(', ')}`, ExitCode.ArchMismatch, [
      'Cross-arch headers are paired by their .config; fetch them with `kbundle headers fetch <release> --arch <arch>` and name them as {release, headers}.',
    ]);
  }
  return pairs;
}
