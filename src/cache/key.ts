/**
 * The build cache key: everything that decides the bytes make produces.
 * Pure: callers gather the inputs (see gatherHeaderIdentity).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

// v2: the build dir maps to dkms's build path (module bytes changed).
export const CACHE_FORMAT = 'kbundle-build-cache-v2';

export interface CacheKeyInputs {
  sourceDigest: string;
  kernel: string;
  arch: string;
  /** Digest of the header files that define the kernel ABI (see headerIdentity). */
  headersDigest: string;
  /** `$CC --version` of the compiler kbuild will use. */
  compiler: string;
  /** The evaluated build recipe with tree paths replaced by placeholders. */
  recipe: unknown;
}

export function cacheKey(inputs: CacheKeyInputs): string {
  const h = createHash('sha256');
  h.update(JSON.stringify([CACHE_FORMAT, inputs.sourceDigest, inputs.kernel, inputs.arch, inputs.headersDigest, inputs.compiler, inputs.recipe]));
  return h.digest('hex');
}

/** Files of a headers tree whose contents change whenever the ABI or config does. */
const HEADER_IDENTITY_FILES = ['.config', 'Module.symvers', 'include/generated/utsrelease.h', 'include/generated/autoconf.h', 'include/config/kernel.release', '.kernelvariables'];

export async function headerIdentity(kernelSourceDir: string): Promise<string> {
  const h = createHash('sha256');
  for (const f of HEADER_IDENTITY_FILES) {
    try {
      const data = await readFile(join(kernelSourceDir, f));
      h.update(`${f}\0${data.length}\0`);
      h.update(data);
    } catch {
      h.update(`${f}\0missing\0`);
    }
  }
  return h.digest('hex');
}
