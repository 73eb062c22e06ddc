/**
 * The target kernel's symbol CRC table, looked up in the order docs/formats/kabi.md
 * ("Where the target's CRCs come from") gives. /proc/kallsyms is deliberately not a source: since commit
 * 7b4537199a4a `__crc_*` symbols give addresses, not CRC values.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseSymvers, type SymversEntry } from '../elf/symvers.js';
import { decompress } from '../kmod/decompress.js';
import { resolveHostPath } from './rooted.js';

export type { SymversEntry } from '../elf/symvers.js';

export interface TargetSymvers {
  /** Host path actually read. */
  path: string;
  entries: Map<string, SymversEntry>;
  /** `sha256:<hex>` of the uncompressed text, comparable with a bundle's build-time symversDigest. */
  digest: string;
}

/**
 * Lookup order, first existing file wins: distribution copies next to the
 * kernel (Fedora/RHEL/SUSE) before header packages, and the `build` link last
 * because it is the one most often dangling or pointing at other headers.
 */
export function symversLookupPaths(kernel: string, root: string, installTree: string): string[] {
  return [
    join(root, 'boot', `symvers-${kernel}.gz`),
    join(root, 'boot', `symvers-${kernel}.xz`),
    join(installTree, kernel, 'symvers.gz'),
    join(installTree, kernel, 'symvers.xz'),
    join(root, 'usr/src/kernels', kernel, 'Module.symvers'),
    join(root, 'usr/src', `linux-headers-${kernel}`, 'Module.symvers'),
    join(installTree, kernel, 'build', 'Module.symvers'),
  ];
}

export function symversDigest(text: Buffer): string {
  return 'sha256:' + createHash('sha256').update(text).digest('hex');
}

export async function findTargetSymvers(kernel: string, root: string, installTree: string): Promise<TargetSymvers | null> {
  for (const candidate of symversLookupPaths(kernel, root, installTree)) {
    const path = await resolveHostPath(root, candidate);
    let raw: Buffer;
    try {
      raw = await readFile(path);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw e;
    }
    const text = await decompress(raw, path);
    return { path, entries: parseSymvers(text.toString('utf8'), path), digest: symversDigest(text) };
  }
  return null;
}
