// Kill points: run the kbundle CLI under strace and SIGKILL it at the N-th
// call of one namespace-changing or durability syscall, for every such
// syscall and every N, so a crash-safety claim is checked at each step where
// the on-disk state can change rather than at a few sleep()-timed moments.
//
// Why these syscalls and not write/openat: a file's contents only become
// visible under its final name through a rename (or link), and a killed
// process's unflushed data is still in the page cache, so SIGKILL at a write
// leaves the same namespace as SIGKILL at the fsync or rename that follows
// it: a temp file that nobody can see yet. Killing at every write would
// multiply the runs without reaching a new state. What a kill cannot show
// (power loss: data not yet on disk) is the job of write-order.test.ts.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { BIN } from './scratch.js';

export const MUTATING_SYSCALLS = [
  'rename',
  'renameat',
  'renameat2',
  'unlink',
  'unlinkat',
  'rmdir',
  'mkdir',
  'mkdirat',
  'symlink',
  'symlinkat',
  'link',
  'linkat',
  'fsync',
  'fdatasync',
] as const;
export type MutatingSyscall = (typeof MUTATING_SYSCALLS)[number];

/** Traced alongside, only to tell kbundle's threads from its child processes. */
const PROCESS_SYSCALLS = ['clone', 'clone3', 'fork', 'vfork', 'execve'];
const CLONES = new Set(['clone', 'clone3', 'fork', 'vfork']);

export interface TracedCall {
  pid: number;
  syscall: string;
  /** 1-based count of this syscall in this tracee (strace's when= counts the same way). */
  nth: number;
  /** The call as strace printed it (arguments, result unless killed). */
  text: string;
}

export interface Injection extends TracedCall {
  /** kbundle = the node process (any of its threads); child = a process it started (depmod, bash, cp...). */
  who: 'kbundle' | 'child';
  /** Executable of the killed process (basename of its last execve; "kbundle" for the node process). */
  exe: string;
}

export interface TraceLog {
  topPid: number | null;
  calls: TracedCall[];
  injections: Injection[];
  killedPids: number[];
  /** Highest per-tracee count of each syscall, split by who made the calls. */
  maxCount: Record<string, { kbundle: number; child: number }>;
}

export interface TracedRun {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  log: TraceLog;
  /** none: no tracee reached the N-th call; kbundle: the node process was killed; child: only children were. */
  killed: 'none' | 'kbundle' | 'child';
  /** The injections with paths, pids and random suffixes normalised: equal for two runs of the same point. */
  site: string;
  ms: number;
}

/**
 * Reads an `strace -f` log. when=N counts per syscall per tracee (strace(1),
 * "Accounting of syscalls ... per tracee"), so every tracee whose count of
 * the injected syscall reaches N got SIGKILL at that call: a child killed at
 * its N-th call does not stop kbundle reaching its own N-th call later.
 */
export function parseTraceLog(text: string, inject: { syscall: string; n: number } | null): TraceLog {
  let topPid: number | null = null;
  const edges: Array<{ parent: number; child: number; thread: boolean }> = [];
  const pendingClone = new Map<number, boolean>();
  const pendingExec = new Map<number, string>();
  const exe = new Map<number, string>();
  const killed = new Set<number>();
  const calls: TracedCall[] = [];
  const counts = new Map<string, number>();
  const mutating = new Set<string>(MUTATING_SYSCALLS);
  for (const raw of text.split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(raw);
    if (!m) continue;
    const pid = Number(m[1]);
    const rest = m[2]!;
    topPid ??= pid;
    if (rest.startsWith('+++ killed by SIGKILL')) {
      killed.add(pid);
      continue;
    }
    const resumed = /^<\.\.\. (\w+) resumed>(.*)$/.exec(rest);
    if (resumed) {
      const [, name, tail] = resumed;
      const ret = /= (\d+)\s*$/.exec(tail!);
      if (CLONES.has(name!) && pendingClone.has(pid)) {
        if (ret) edges.push({ parent: pid, child: Number(ret[1]), thread: pendingClone.get(pid)! });
        pendingClone.delete(pid);
      } else if (name === 'execve' && pendingExec.has(pid)) {
        if (/= 0\s*$/.test(tail!)) exe.set(pid, pendingExec.get(pid)!);
        pendingExec.delete(pid);
      }
      continue;
    }
    const call = /^(\w+)\(/.exec(rest);
    if (!call) continue;
    const name = call[1]!;
    const unfinished = rest.endsWith('<unfinished ...>');
    if (CLONES.has(name)) {
      const thread = rest.includes('CLONE_THREAD');
      const ret = /= (\d+)\s*$/.exec(rest);
      if (unfinished) pendingClone.set(pid, thread);
      else if (ret) edges.push({ parent: pid, child: Number(ret[1]), thread });
    } else if (name === 'execve') {
      const path = basename(/^execve\("([^"]*)"/.exec(rest)?.[1] ?? '?');
      if (unfinished) pendingExec.set(pid, path);
      else if (/= 0\s*$/.test(rest)) exe.set(pid, path);
    } else if (mutating.has(name)) {
      const key = `${pid} ${name}`;
      const nth = (counts.get(key) ?? 0) + 1;
      counts.set(key, nth);
      calls.push({ pid, syscall: name, nth, text: rest.replace(/ <unfinished \.\.\.>$/, '') });
    }
  }
  // Thread group of the node process: its threads (and their threads). Resolved
  // after reading everything because a new tracee's first lines can precede
  // the parent's clone() return in the log.
  const group = new Set<number>(topPid === null ? [] : [topPid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const e of edges) {
      if (e.thread && group.has(e.parent) && !group.has(e.child)) {
        group.add(e.child);
        grew = true;
      }
    }
  }
  // A child's threads are that child for our purposes: map each pid to its process leader.
  const leader = new Map<number, number>();
  const leaderOf = (pid: number): number => {
    if (leader.has(pid)) return leader.get(pid)!;
    const e = edges.find((x) => x.child === pid && x.thread);
    const l = e ? leaderOf(e.parent) : pid;
    leader.set(pid, l);
    return l;
  };
  const exeOf = (pid: number): string => {
    if (group.has(pid)) return 'kbundle';
    // A forked child that never exec'd (a bash subshell) runs its parent's program.
    for (let p: number | undefined = leaderOf(pid); p !== undefined; p = edges.find((x) => x.child === p && !x.thread)?.parent) {
      const e = exe.get(p);
      if (e) return e;
      if (group.has(p)) return 'kbundle';
    }
    return '?';
  };
  const maxCount: TraceLog['maxCount'] = {};
  for (const c of calls) {
    const who = group.has(c.pid) ? 'kbundle' : 'child';
    const slot = (maxCount[c.syscall] ??= { kbundle: 0, child: 0 });
    slot[who] = Math.max(slot[who], c.nth);
  }
  const injections: Injection[] = inject
    ? calls
        .filter((c) => c.syscall === inject.syscall && c.nth === inject.n)
        .map((c) => ({ ...c, who: group.has(c.pid) ? ('kbundle' as const) : ('child' as const), exe: exeOf(c.pid) }))
    : [];
  return { topPid, calls, injections, killedPids: [...killed], maxCount };
}

/** Paths of the scratch root, pids, temp-name randomness out: what stays equal between two runs of one point. */
export function normaliseSite(text: string, root: string): string {
  return text
    .split(root)
    .join('<root>')
    .split(dirname(root))
    .join('<base>')
    // mktemp(1) names (the dkms.conf evaluator's bash uses it under TMPDIR).
    .replace(/\/tmp\.[A-Za-z0-9]{6,}/g, '/tmp.*')
    // Temp names with pid and random hex: .x.tmp-<pid>-<hex>, .x.kbundle-tmp-<pid>-<hex>, staging <pid>-<hex>.
    .replace(/(tmp|stale)-[0-9]+-[0-9a-f]+/g, '$1-*')
    .replace(/\.(tmp|stale)-[0-9a-f]+/g, '.$1-*')
    .replace(/\b[0-9]+-[0-9a-f]{8}\b/g, '<id>')
    // mkdtemp(3) suffixes: six letters and digits ending a path component after a dash.
    .replace(/-[A-Za-z0-9]{6}(?=["/])/g, '-*')
    .replace(/[0-9a-f]{16,}/g, '<hex>')
    .replace(/\b\d{4,}\b/g, '<n>')
    .replace(/\b0x[0-9a-f]+\b/g, '<addr>')
    .replace(/ = \d+$/, ' = <n>');
}

export interface TraceOptions {
  /** Where the strace log goes (removed after reading unless keepLog). */
  logDir: string;
  /** Scratch root, for normalising sites. */
  root: string;
  env?: NodeJS.ProcessEnv;
  keepLog?: boolean;
}

let seq = 0;

interface Prepared {
  log: string;
  argv: string[];
  env: NodeJS.ProcessEnv;
}

/**
 * UV_THREADPOOL_SIZE=1: Node runs its async fs calls on libuv's pool (4
 * threads by default). strace counts per thread, so with several pool
 * threads "the 3rd rename" of a thread depends on which idle thread picked
 * each request, and the killed call changes from run to run. One pool thread
 * makes the per-thread order the program order.
 *
 * No --seccomp-bpf: it would stop only at traced syscalls (faster), but with
 * it strace 6.1 did not inject at when=N for N > 1.
 */
function prepare(args: string[], inject: { syscall: string; n: number } | null, o: TraceOptions): Prepared {
  mkdirSync(o.logDir, { recursive: true });
  const log = join(o.logDir, `strace-${process.pid}-${++seq}.log`);
  const straceArgs = ['-f', '-qq', '-e', 'signal=none', '-o', log, '-e', `trace=${[...MUTATING_SYSCALLS, ...PROCESS_SYSCALLS].join(',')}`];
  if (inject) straceArgs.push('-e', `inject=${inject.syscall}:signal=KILL:when=${inject.n}`);
  return { log, argv: [...straceArgs, process.execPath, BIN, ...args], env: { ...process.env, ...o.env, UV_THREADPOOL_SIZE: '1' } };
}

function finish(
  p: Prepared,
  inject: { syscall: string; n: number } | null,
  o: TraceOptions,
  r: { code: number | null; signal: string | null; stdout: string; stderr: string },
  ms: number,
): TracedRun {
  const parsed = parseTraceLog(readFileSync(p.log, 'utf8'), inject);
  if (!o.keepLog) rmSync(p.log, { force: true });
  const killed = parsed.injections.some((i) => i.who === 'kbundle') ? 'kbundle' : parsed.injections.length ? 'child' : 'none';
  const site = parsed.injections.map((i) => `${i.exe}#${i.nth} ${normaliseSite(i.text, o.root)}`).join(' | ');
  return { ...r, log: parsed, killed, site, ms };
}

/** Runs `node bin/kbundle ...args` under strace, with SIGKILL injected at the N-th call of one syscall (inject = null: traced, nothing injected). */
export function runKilled(args: string[], inject: { syscall: string; n: number } | null, o: TraceOptions): TracedRun {
  const p = prepare(args, inject, o);
  const t0 = Date.now();
  const r = spawnSync('strace', p.argv, { encoding: 'utf8', env: p.env, maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return finish(p, inject, o, { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr }, Date.now() - t0);
}

/** The same without blocking, so the scenarios of one test file can share the machine's cores. */
export async function runKilledAsync(args: string[], inject: { syscall: string; n: number } | null, o: TraceOptions): Promise<TracedRun> {
  const p = prepare(args, inject, o);
  const t0 = Date.now();
  const r = await run('strace', p.argv, p.env);
  return finish(p, inject, o, r, Date.now() - t0);
}

/** spawn as a promise: exit code or signal, and the output. */
export function run(cmd: string, argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    c.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    c.on('error', reject);
    c.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** KBUNDLE_KILL_FULL=1: every N of every syscall. */
export const fullSweep = () => process.env.KBUNDLE_KILL_FULL === '1';

/**
 * Kill points per test when not running the full sweep (KBUNDLE_KILL_BUDGET,
 * default 16): sized so the suite stays within CI's few minutes on 2 cores.
 */
export const killBudget = () => Math.max(1, Number(process.env.KBUNDLE_KILL_BUDGET) || 16);

/**
 * The subset of N to try for each syscall when not sweeping fully, from a
 * clean traced run's per-tracee maximum counts: every k-th N with
 * k = ceil(total / budget) and an offset that moves by one per syscall, so
 * over the syscalls every residue mod k is hit and the same calls are not
 * always the ones skipped; every syscall that is called at all gets at least
 * one point. Same counts in, same points out.
 */
export function planSubset(maxCount: TraceLog['maxCount'], budget: number): Array<{ syscall: string; n: number }> {
  const per = MUTATING_SYSCALLS.map((s) => ({ syscall: s as string, max: Math.max(maxCount[s]?.kbundle ?? 0, maxCount[s]?.child ?? 0) }));
  const total = per.reduce((a, p) => a + p.max, 0);
  const k = Math.max(1, Math.ceil(total / budget));
  const out: Array<{ syscall: string; n: number }> = [];
  per.forEach(({ syscall, max }, i) => {
    const offset = 1 + (i % k);
    for (let n = offset; n <= max; n += k) out.push({ syscall, n });
    // A syscall called fewer times than its offset (the one symlink of an install) still gets one point.
    if (max > 0 && offset > max) out.push({ syscall, n: ((offset - 1) % max) + 1 });
  });
  return out;
}
