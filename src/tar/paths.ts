import { posix } from 'node:path';

/**
 * Path rules shared by the tar writer and the extractor. Paths inside an
 * archive are always relative, `/`-separated and free of `.`/`..`
 * components; everything else is refused rather than repaired, because a
 * repaired name is a name the producer did not write.
 */

/** Returns the normalised relative path, or a reason it is unsafe. */
export function checkEntryName(raw: string): { path: string } | { reason: string } {
  if (raw.includes('\0')) return { reason: 'contains a NUL byte' };
  if (raw.startsWith('/')) return { reason: 'is an absolute path' };
  // GNU tar writes `./x`; accept that one spelling of "relative".
  let name = raw.startsWith('./') ? raw.slice(2) : raw;
  if (name.endsWith('/')) name = name.slice(0, -1);
  if (name === '' || name === '.') return { reason: 'names the extraction root' };
  const parts = name.split('/');
  if (parts.includes('..')) return { reason: 'contains a ".." component' };
  if (parts.some((p) => p === '' || p === '.')) return { reason: 'contains an empty or "." component' };
  return { path: parts.join('/') };
}

export type LinkLookup = (path: string) => { kind: 'symlink'; target: string } | { kind: 'other' } | null;

/**
 * Resolves `target` of a symlink stored at `linkPath`, following symlinks
 * met on the way through `lookup`, and reports whether the result stays
 * inside the root. A purely lexical check is not enough: with `b -> .`, the
 * link `a -> b/..` looks like `.` lexically but leaves the root.
 */
export function symlinkStaysInside(linkPath: string, target: string, lookup: LinkLookup): boolean {
  if (target.startsWith('/') || target.includes('\0')) return false;
  let hops = 0;
  const walk = (base: string[], rel: string): string[] | null => {
    const stack = [...base];
    const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
    for (const part of parts) {
      if (part === '..') {
        if (stack.length === 0) return null;
        stack.pop();
        continue;
      }
      stack.push(part);
      const hit = lookup(stack.join('/'));
      if (hit?.kind === 'symlink') {
        if (++hops > 40) return null;
        if (hit.target.startsWith('/')) return null;
        stack.pop();
        const next = walk(stack, hit.target);
        if (next === null) return null;
        stack.splice(0, stack.length, ...next);
      }
    }
    return stack;
  };
  return walk(posix.dirname(linkPath).split('/').filter((p) => p !== '' && p !== '.'), target) !== null;
}
