import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { KbundleError } from '../util/errors.js';
import { BundleExit } from '../bundle/exit-codes.js';
import type { KernelSelector, ResolvedKernel } from './types.js';

/**
 * Expands kernel releases/globs against the kernels whose headers are
 * installed (`<root>/<release>/build` is a directory). Every pattern must
 * match something: a typo'd pattern silently building nothing for a kernel
 * is how a fleet ends up without its driver.
 */
export function resolveKernels(patterns: (string | KernelSelector)[], headerRoots: string[] = ['/lib/modules']): string[] {
  return resolveKernelTargets(patterns, headerRoots).map((k) => k.release);
}

export function resolveKernelTargets(patterns: (string | KernelSelector)[], headerRoots: string[] = ['/lib/modules']): ResolvedKernel[] {
  const available = new Map<string, string>();
  for (const root of headerRoots) {
    let names: string[] = [];
    try {
      names = readdirSync(root);
    } catch {
      continue;
    }
    for (const n of names) {
      const build = join(root, n, 'build');
      if (!available.has(n) && isDir(build)) available.set(n, build);
    }
  }
  const out = new Map<string, string>();
  const installed = () => [...available.keys()].sort(releaseOrder).join(', ') || 'none';
  for (const p of patterns) {
    const sel = typeof p === 'string' ? { pattern: p } : p;
    if (sel.headers) {
      if (!isDir(sel.headers)) throw new KbundleError(`kernel ${sel.pattern}: headers directory ${sel.headers} does not exist`, BundleExit.NoKernelMatch);
      out.set(sel.pattern, sel.headers);
      continue;
    }
    const re = globToRegExp(sel.pattern);
    const hits = [...available.keys()].filter((k) => re.test(k));
    if (hits.length === 0) {
      throw new KbundleError(
        `kernel pattern "${sel.pattern}" matches no kernel with headers under ${headerRoots.join(', ')} (installed: ${installed()})`,
        BundleExit.NoKernelMatch,
      );
    }
    for (const h of hits) if (!out.has(h)) out.set(h, available.get(h)!);
  }
  return [...out.entries()].sort(([a], [b]) => releaseOrder(a, b)).map(([release, headers]) => ({ release, headers }));
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Shell-style glob (`*`, `?`, `[...]`) over one release name. */
export function globToRegExp(glob: string): RegExp {
  if (glob.includes('/')) throw new KbundleError(`kernel pattern "${glob}" must not contain "/"`, BundleExit.BadManifest);
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) throw new KbundleError(`kernel pattern "${glob}" has an unclosed "["`, BundleExit.BadManifest);
      re += '[' + glob.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\') + ']';
      i = end;
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Numeric-aware, locale-independent order: 6.1.0-9 before 6.1.0-10. */
export function releaseOrder(a: string, b: string): number {
  const pa = a.split(/(\d+)/);
  const pb = b.split(/(\d+)/);
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] === pb[i]) continue;
    if (i % 2 === 1) return Number(pa[i]) - Number(pb[i]) || (pa[i] < pb[i] ? -1 : 1);
    return pa[i] < pb[i] ? -1 : 1;
  }
  return pa.length - pb.length;
}
