/**
 * Paths inside an image or chroot root. Debian's `/lib/modules/<k>/build` is
 * an absolute symlink to `/usr/src/linux-headers-<k>`; read from an image
 * root, following it naively would land on the *host's* headers. Resolving
 * absolute links against the root keeps every read inside the image.
 */
import { lstat, readlink } from 'node:fs/promises';
import { isAbsolute, join, posix, relative, resolve, sep } from 'node:path';

const MAX_LINKS = 40; // the kernel's own limit on nested symlinks (ELOOP)

/** True when `root` means the running system (reads of /proc, /sys and uname are allowed). */
export function isHostRoot(root: string): boolean {
  return resolve(root) === '/';
}

/**
 * `path` (absolute, as seen inside the root) resolved to a host path, with
 * every symlink on the way interpreted relative to `root`, the way `chroot`
 * would. Missing components are kept as they are, so the result can be
 * tested with existsSync/stat by the caller.
 */
export async function resolveInRoot(root: string, path: string): Promise<string> {
  const base = resolve(root);
  if (base === '/') return path;
  let pending = posix.normalize(path).split('/').filter(Boolean);
  let done: string[] = [];
  let hops = 0;
  while (pending.length) {
    const part = pending.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      done.pop(); // '..' at the root stays at the root, as in a chroot
      continue;
    }
    const host = join(base, ...done, part);
    let isLink = false;
    try {
      isLink = (await lstat(host)).isSymbolicLink();
    } catch {
      // A missing component: nothing further can be a link.
      return join(base, ...done, part, ...pending);
    }
    if (!isLink) {
      done.push(part);
      continue;
    }
    if (++hops > MAX_LINKS) return join(base, ...done, part, ...pending);
    const target = await readlink(host);
    const targetParts = target.split('/').filter(Boolean);
    if (isAbsolute(target)) done = [];
    pending = [...targetParts, ...pending];
  }
  return join(base, ...done);
}

/**
 * A host path that may lie inside `root` (e.g. an explicit install tree under
 * the image) resolved with resolveInRoot; paths outside the root are the
 * caller's own choice and are used as given.
 */
export async function resolveHostPath(root: string, hostPath: string): Promise<string> {
  const base = resolve(root);
  if (base === '/') return hostPath;
  const abs = resolve(hostPath);
  if (abs !== base && !abs.startsWith(base + sep)) return abs;
  return resolveInRoot(base, '/' + relative(base, abs));
}
