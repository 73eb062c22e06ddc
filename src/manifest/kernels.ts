import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { KbundleError } from '../util/errors.js';
import type { KernelSelector, ResolvedKernel } from './types.js';
import { ExitCode } from '../util/exit-codes.js';

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
      if (!isDir(sel.headers)) throw new KbundleError(`kernel ${sel.pattern}: headers directory ${sel.headers} does not exist`, ExitCode.NoKernelMatch);
      out.set(sel.pattern, sel.headers);
      continue;
    }
    const match = globMatcher(sel.pattern);
    const hits = [...available.keys()].filter((k) => match(k));
    if (hits.length === 0) {
      throw new KbundleError(
        `kernel pattern "${sel.pattern}" matches no kernel with headers under ${headerRoots.join(', ')} (installed: ${installed()})`,
        ExitCode.NoKernelMatch,
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

type GlobToken = { any: true } | { one: (c: string) => boolean };

/** The pattern as single-character tests and `*`s; a bad `[...]` is a manifest error, not a crash. */
function globTokens(glob: string): GlobToken[] {
  if (glob.includes('/')) throw new KbundleError(`kernel pattern "${glob}" must not contain "/"`, ExitCode.BadManifest);
  const out: GlobToken[] = [];
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (!('any' in (out.at(-1) ?? {}))) out.push({ any: true });
    } else if (c === '?') out.push({ one: () => true });
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end < 0) throw new KbundleError(`kernel pattern "${glob}" has an unclosed "["`, ExitCode.BadManifest);
      let cls: RegExp;
      try {
        cls = new RegExp(`^[${classBody(glob.slice(i + 1, end))}]$`);
      } catch {
        throw new KbundleError(`kernel pattern "${glob}" has an invalid class "${glob.slice(i, end + 1)}"`, ExitCode.BadManifest);
      }
      out.push({ one: (ch) => cls.test(ch) });
      i = end;
    } else out.push({ one: (ch) => ch === c });
  }
  return out;
}

const classBody = (body: string): string => body.replace(/^!/, '^').replace(/\\/g, '\\\\');

/**
 * Shell-style glob (`*`, `?`, `[...]`) over one release name, matched in
 * O(pattern × name). The RegExp form (`.*` per `*`) backtracks
 * exponentially: `*a` forty times against 60 a's ran for minutes.
 */
export function globMatcher(glob: string): (name: string) => boolean {
  const t = globTokens(glob);
  return (name) => {
    // Greedy with one resume point: on a mismatch, let the last `*` eat one more character.
    let ti = 0;
    let ni = 0;
    let starT = -1;
    let starN = 0;
    while (ni < name.length) {
      const tok = t[ti];
      if (tok && 'any' in tok) {
        starT = ti++;
        starN = ni;
      } else if (tok && tok.one(name[ni]!)) {
        ti++;
        ni++;
      } else if (starT >= 0) {
        ti = starT + 1;
        ni = ++starN;
      } else return false;
    }
    while (ti < t.length && 'any' in t[ti]!) ti++;
    return ti === t.length;
  };
}

/** Shell-style glob (`*`, `?`, `[...]`) over one release name, as a RegExp (for callers that want one). */
export function globToRegExp(glob: string): RegExp {
  globTokens(glob);
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      re += '[' + classBody(glob.slice(i + 1, end)) + ']';
      i = end;
    } else re += c!.replace(/[.+^${}()|\\]/g, '\\$&');
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
