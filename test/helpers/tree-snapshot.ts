// A byte-level picture of a scratch root (DKMS tree, source tree, install
// tree, etc dir) keyed by path relative to the root, so two runs in the same
// place compare entry for entry and a leftover temp file, lock, journal or
// empty directory shows up as a difference.
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

/** relative path -> "dir 755" | "file 644 <sha256>" | "link <target>" | "other <mode>". */
export type TreeSnapshot = Map<string, string>;

export function snapshotTree(root: string): TreeSnapshot {
  const out: TreeSnapshot = new Map();
  const walk = (dir: string, rel: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.set(r, `link ${readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.set(r, `dir ${mode}`);
        walk(p, r);
      } else if (st.isFile()) out.set(r, `file ${mode} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
      else out.set(r, `other ${st.mode.toString(8)}`);
    }
  };
  if (existsSync(root)) walk(root, '');
  return out;
}

/** "+ path  desc" (only in actual), "- path  desc" (only in expected), "~ path  expected -> actual". */
export function diffSnapshots(expected: TreeSnapshot, actual: TreeSnapshot): string[] {
  const lines: string[] = [];
  const short = (d: string) => d.replace(/ ([0-9a-f]{12})[0-9a-f]{52}$/, ' $1…');
  for (const [p, d] of expected) {
    const a = actual.get(p);
    if (a === undefined) lines.push(`- ${p}  ${short(d)}`);
    else if (a !== d) lines.push(`~ ${p}  ${short(d)} -> ${short(a)}`);
  }
  for (const [p, d] of actual) if (!expected.has(p)) lines.push(`+ ${p}  ${short(d)}`);
  return lines.sort((x, y) => x.slice(2).localeCompare(y.slice(2)));
}

export const sameSnapshot = (a: TreeSnapshot, b: TreeSnapshot) => a.size === b.size && [...a].every(([p, d]) => b.get(p) === d);
