/**
 * Stops a bash and everything it started. Killing only the bash that
 * kbundle spawned is not enough: a conf runs in a subshell of it (DKMS's
 * safe_source), and that subshell, orphaned, would go on looping and hold
 * our stderr open. Linux-only, like the rest of kbundle.
 */
import { readdirSync, readFileSync } from 'node:fs';

function tree(root: number): number[] {
  const children = new Map<number, number[]>();
  let names: string[] = [];
  try {
    names = readdirSync('/proc');
  } catch {
    return [root];
  }
  for (const n of names) {
    if (!/^\d+$/.test(n)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${n}/stat`, 'latin1');
    } catch {
      continue;
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(n));
    children.set(ppid, list);
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length) {
    const p = todo.pop()!;
    out.push(p);
    todo.push(...(children.get(p) ?? []));
  }
  return out;
}

function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const p of pids) {
    try {
      process.kill(p, sig);
    } catch {
      // already gone
    }
  }
}

/** SIGSTOP first so nothing forks while the tree is read, then SIGKILL all of it. */
export function killTree(pid: number | undefined): void {
  if (pid === undefined) return;
  const seen = new Set<number>();
  for (let round = 0; round < 3; round++) {
    const pids = tree(pid).filter((p) => !seen.has(p));
    if (pids.length === 0) break;
    signal(pids, 'SIGSTOP');
    for (const p of pids) seen.add(p);
  }
  signal([...seen], 'SIGKILL');
}
