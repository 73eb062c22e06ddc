/** DKMS's tarball names (docs/dkms-compat.md, "mktarball / ldtarball"), pure. */
import type { Target } from '../tree/paths.js';

export function tarballName(module: string, version: string, targets: Target[], sourceOnly: boolean): string {
  if (sourceOnly || targets.length === 0) return `${module}-${version}-source-only.dkms.tar.gz`;
  const kernels = targets.map((t) => `kernel${t.kernel}-${t.arch}`).join('-');
  // DKMS switches to "manykernels" once the list would make the name unwieldy.
  return `${module}-${version}-${kernels.length > 200 ? 'manykernels' : kernels}.dkms.tar.gz`;
}

/** tar's compression flag for an archive name, like `tar -a`. */
export function compressionFor(archive: string): string[] {
  if (/\.(tar\.gz|tgz)$/.test(archive)) return ['--use-compress-program=gzip -n -9'];
  if (/\.(tar\.xz|txz)$/.test(archive)) return ['--use-compress-program=xz -T1'];
  if (/\.(tar\.bz2|tbz2?)$/.test(archive)) return ['--use-compress-program=bzip2 -9'];
  if (/\.(tar\.zst|tzst)$/.test(archive)) return ['--use-compress-program=zstd -q -19 -T1'];
  return [];
}
