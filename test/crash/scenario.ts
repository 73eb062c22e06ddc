// The kill-point driver shared by test/crash/killpoints-*.test.ts: prepare a
// "before" tree once, record the clean "after", then for each kill point
// restore the before tree at the same path, kill the command there, recover,
// and compare byte for byte.
//
// The scenarios of a file are test.concurrent and everything here is async:
// on a 2-core machine vitest runs one file at a time (maxWorkers = cores - 1)
// and one scenario, a chain of single processes, keeps about one core busy.
//
// Every run happens at the same absolute path (<base>/root): kbundle records
// absolute paths (install records, .origin files, the journal, symlinks to
// the source tree), so a tree copied elsewhere would differ from the clean
// one for reasons that have nothing to do with the crash.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fullSweep, killBudget, MUTATING_SYSCALLS, planSubset, run, runKilledAsync, type TracedRun } from '../helpers/killpoints.js';
import { BIN, REPO, seedKernelModule, sh, type RunResult, type Scratch } from '../helpers/scratch.js';
import { diffSnapshots, sameSnapshot, snapshotTree, type TreeSnapshot } from '../helpers/tree-snapshot.js';
import { intreeModule } from '../deploy/helpers.js';
import { describe, test } from 'vitest';
import { twoKernels } from '../helpers/kernels.js';

export interface Trees extends Scratch {
  /** --dkmstree/--sourcetree/--installtree/--etcdir: nothing falls back to the host's /etc/dkms. */
  treeArgs: string[];
}

export function treesAt(root: string): Trees {
  const t = {
    root,
    dkmsTree: join(root, 'var/lib/dkms'),
    sourceTree: join(root, 'usr/src'),
    installTree: join(root, 'lib/modules'),
    etcDir: join(root, 'etc/dkms'),
    treeArgs: [] as string[],
  };
  t.treeArgs = ['--dkmstree', t.dkmsTree, '--sourcetree', t.sourceTree, '--installtree', t.installTree, '--etcdir', t.etcDir];
  return t;
}

/** Core builds in the preparation share one cache outside the scratch root (it is not what is under test). */
const PREP_CACHE = join(process.env.KBUNDLE_TEST_CACHE || '/tmp/kbundle-test-cache', 'kill-prep-cache');

/** The CLI without strace (preparation). */
export function kb(args: string[], env: NodeJS.ProcessEnv = {}): RunResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

async function kbAsync(args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  const r = await run(process.execPath, [BIN, ...args], { ...process.env, ...env });
  return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function ok(r: RunResult, what: string): RunResult {
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

/**
 * A scratch layout with kernel k's headers linked and, when this machine has
 * kernel k's modules, one in-tree module (so the tree compresses like k).
 * `intree`: add a real in-tree stand-in module (needed by bundle installs
 * to read the target's vermagic when the kernel has no module tree here).
 */
export function layout(t: Trees, k: string, opts: { intree?: boolean } = {}): void {
  for (const d of [t.dkmsTree, t.sourceTree, join(t.installTree, k), t.etcDir]) mkdirSync(d, { recursive: true });
  sh('ln', ['-s', `/lib/modules/${k}/build`, join(t.installTree, k, 'build')]);
  const seeded = seedKernelModule(t, k);
  if (!seeded && opts.intree) {
    mkdirSync(join(t.installTree, k, 'kernel/drivers/misc'), { recursive: true });
    cpSync(intreeModule(k), join(t.installTree, k, 'kernel/drivers/misc/kbt_intree.ko'));
  }
}

/** The kernel's own module extension in this scratch tree ('' or '.xz'), from the seeded in-tree module. */
const kernelExt = (t: Trees, k: string) => (existsSync(join(t.installTree, k, 'kernel/drivers/net/dummy.ko.xz')) ? '.xz' : '');

/**
 * A distribution module of the same name as ours, where the distribution
 * would have it: installing must archive it, uninstalling must put it back
 * byte for byte. A real module (built against k) so depmod indexes it.
 */
export function placeOriginal(t: Trees, k: string): string {
  const dir = join(t.installTree, k, 'kernel/drivers/misc');
  mkdirSync(dir, { recursive: true });
  const ext = kernelExt(t, k);
  const dest = join(dir, `hello.ko${ext}`);
  if (ext === '.xz') {
    const r = spawnSync('xz', ['-c', '--check=crc32', '--lzma2=dict=1MiB', intreeModule(k)], { maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`xz failed: ${r.stderr}`);
    writeFileSync(dest, r.stdout);
  } else cpSync(intreeModule(k), dest);
  return dest;
}

export function depmod(t: Trees, k: string): void {
  const r = sh('depmod', ['-a', '-b', t.root, k]);
  if (r.code !== 0) throw new Error(`depmod: ${r.stderr}`);
}

/** bundles/hello-1.0 as <sourcetree>/hello-<v>, the version changed in dkms.conf and MODULE_VERSION. */
export function helloSource(t: Trees, version: string): string {
  const dest = join(t.sourceTree, `hello-${version}`);
  cpSync(join(REPO, 'bundles/hello-1.0'), dest, { recursive: true });
  for (const f of ['dkms.conf', 'hello.c']) {
    const p = join(dest, f);
    writeFileSync(p, readFileSync(p, 'utf8').replace(/PACKAGE_VERSION="1\.0"/, `PACKAGE_VERSION="${version}"`).replace(/MODULE_VERSION\("1\.0"\)/, `MODULE_VERSION("${version}")`));
  }
  return dest;
}

let srcBase: string | undefined;

/** A hello-<v> source dir outside any scratch root (for bundle builds), made once per test file; `removeHelloSources` in afterAll. */
export function helloSourceDir(version: string): string {
  srcBase ??= mkdtempSync(join(tmpdir(), 'kbundle-kill-src-'));
  const dir = join(srcBase, `hello-${version}`);
  if (!existsSync(dir)) helloSource({ sourceTree: srcBase } as Trees, version);
  return dir;
}

export function removeHelloSources(): void {
  if (srcBase) rmSync(srcBase, { recursive: true, force: true });
  srcBase = undefined;
}

/** add + build (through the prep cache), optionally install: the core's states. */
export function coreState(t: Trees, k: string, version: string, install: boolean): void {
  if (!existsSync(join(t.sourceTree, `hello-${version}`))) helloSource(t, version);
  ok(kb(['add', `hello/${version}`, ...t.treeArgs]), `add hello/${version}`);
  ok(kb(['build', `hello/${version}`, '-k', k, ...t.treeArgs, '--cache-dir', PREP_CACHE]), `build hello/${version}`);
  if (install) ok(kb(['install', `hello/${version}`, '-k', k, ...t.treeArgs]), `install hello/${version}`);
}

export interface KillScenario {
  /** For the figure line and the report, e.g. "install 6.1.0-55-amd64". */
  label: string;
  /** Builds the "before" state under t (called once). */
  prepare(t: Trees): void;
  command(t: Trees): string[];
  status(t: Trees): string[];
  recover(t: Trees): string[];
  /** Extra check on the clean "after" tree (e.g. the original module is back). */
  checkAfter?(t: Trees): void;
}

export interface PointResult {
  syscall: string;
  n: number;
  killed: TracedRun['killed'];
  site: string;
  exit: string;
  recovery: 'none' | 'status' | 'recover' | 'rerun';
  /** Which clean state the tree matched right after the recovery command. */
  matched: 'before' | 'after' | 'neither' | null;
  problems: string[];
}

export interface ScenarioReport {
  label: string;
  full: boolean;
  points: PointResult[];
  harness: string[];
  determinism: Array<{ point: string; first: string; second: string }>;
  counts: Record<string, { kbundle: number; child: number }>;
  ms: { total: number; cleanRun: number; killRunAvg: number };
  figure: string;
}

const RECOVERIES = ['status', 'recover', 'rerun'] as const;

/** Per test: a full sweep of one operation takes minutes (vitest.config.ts's 300 s is for ordinary tests). */
export const KILL_TEST_TIMEOUT = fullSweep() ? 7_200_000 : 1_200_000;

function firstLines(s: string, n = 3): string {
  return s.trim().split('\n').filter(Boolean).slice(-n).join(' / ');
}

/**
 * Runs the whole sweep for one scenario and returns what it saw; the caller
 * asserts (so the figure line is printed even when points fail).
 */
export async function runKillScenario(sc: KillScenario): Promise<ScenarioReport> {
  const base = mkdtempSync(join(tmpdir(), 'kbundle-kill-'));
  try {
    return await sweep(sc, base);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

async function sweep(sc: KillScenario, base: string): Promise<ScenarioReport> {
  const t0 = Date.now();
  const t = treesAt(join(base, 'root'));
  const golden = join(base, 'golden');
  // TMPDIR of every run points into the test's own dir, so temp files of killed runs stay ours.
  const tmp = join(base, 'tmp');
  const logDir = join(base, 'logs');
  mkdirSync(tmp, { recursive: true });
  sc.prepare(t);
  const kb = (args: string[]) => kbAsync(args, { TMPDIR: tmp });
  // cp -a: modes, symlinks as they are, timestamps (make's view of the tree).
  const copy = async (from: string, to: string) => {
    const r = await run('cp', ['-a', from, to]);
    if (r.code !== 0) throw new Error(`cp -a: ${r.stderr}`);
  };
  await copy(t.root, golden);
  const restore = async () => {
    rmSync(t.root, { recursive: true, force: true });
    await copy(golden, t.root);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
  };
  const cmd = sc.command(t);
  const harness: string[] = [];

  // The clean reference, twice: anything that differs between two clean runs
  // would need normalising (none does today: no timestamps are written by
  // these commands — make.log is only written by builds, which happen in the
  // preparation).
  await restore();
  const before = snapshotTree(t.root);
  const c0 = Date.now();
  const clean = await kb(cmd);
  const cleanMs = Date.now() - c0;
  if (clean.code !== 0) throw new Error(`clean run of ${cmd.join(' ')} failed (${clean.code}): ${clean.stderr}`);
  const after = snapshotTree(t.root);
  sc.checkAfter?.(t);
  const cleanStatus = await kb(sc.status(t));
  for (const [what, args] of [
    ['status', sc.status(t)],
    ['bundle recover', sc.recover(t)],
  ] as const) {
    const r = await kb(args);
    if (r.code !== 0) harness.push(`${what} on the clean "after" tree exits ${r.code}: ${firstLines(r.stderr)}`);
    const d = diffSnapshots(after, snapshotTree(t.root));
    if (d.length) harness.push(`${what} on the clean "after" tree changes it:\n      ${d.slice(0, 8).join('\n      ')}`);
  }
  // The command once more on its own result: it must leave it alone, and its
  // exit code is what a re-run after a recovery that already finished the job
  // may give (remove: DKMS's 3, "not located in the DKMS tree"; the others 0).
  const doneAgain = await kb(cmd);
  const doneExit = doneAgain.code;
  const dd = diffSnapshots(after, snapshotTree(t.root));
  if (dd.length) harness.push(`the command run again on the clean "after" tree changes it:\n      ${dd.slice(0, 8).join('\n      ')}`);
  // A kill after the command's last change leaves the job done and only its lock behind (which any
  // command takes over): the re-run then is the command on its own result, with that exit code.
  const withoutLock = (tree: TreeSnapshot) => new Map([...tree].filter(([p]) => !p.endsWith('/.kbundle-install.lock')));
  const rerunExit = (tree: TreeSnapshot) => (sameSnapshot(withoutLock(tree), after) ? doneExit : 0);
  await restore();
  ok(await kb(cmd), 'second clean run');
  const again = diffSnapshots(after, snapshotTree(t.root));
  if (again.length) throw new Error(`two clean runs differ (needs normalising in tree-snapshot):\n${again.join('\n')}`);

  // A clean traced run: strace must not change the outcome, and its counts bound N.
  await restore();
  const profile = await runKilledAsync(cmd, null, { logDir, root: t.root, env: { TMPDIR: tmp } });
  if (profile.code !== 0) harness.push(`traced clean run exits ${profile.code}: ${firstLines(profile.stderr)}`);
  const pd = diffSnapshots(after, snapshotTree(t.root));
  if (pd.length) harness.push(`traced clean run differs from the clean run:\n      ${pd.slice(0, 8).join('\n      ')}`);

  const points: PointResult[] = [];
  let killedIndex = 0;
  let killMs = 0;
  let killRuns = 0;
  const tryPoint = async (syscall: string, n: number): Promise<PointResult> => {
    await restore();
    const kr = await runKilledAsync(cmd, { syscall, n }, { logDir, root: t.root, env: { TMPDIR: tmp } });
    killMs += kr.ms;
    killRuns++;
    const exit = kr.signal ? kr.signal : String(kr.code);
    const p: PointResult = { syscall, n, killed: kr.killed, site: kr.site, exit, recovery: 'none', matched: null, problems: [] };
    if (kr.killed === 'none') {
      // Nothing was injected: this is a clean run and must look like one.
      if (kr.code !== 0) p.problems.push(`unkilled run exits ${exit}: ${firstLines(kr.stderr)}`);
      const d = diffSnapshots(after, snapshotTree(t.root));
      if (d.length) p.problems.push(`unkilled run differs from "after":\n      ${d.slice(0, 12).join('\n      ')}`);
      return p;
    }
    const recovery = RECOVERIES[killedIndex++ % RECOVERIES.length]!;
    p.recovery = recovery;
    const killedTree = snapshotTree(t.root);
    const rr = await kb(recovery === 'status' ? sc.status(t) : recovery === 'recover' ? sc.recover(t) : cmd);
    const okExit = recovery === 'rerun' ? rerunExit(killedTree) : 0;
    if (rr.code !== okExit) p.problems.push(`(a) ${recovery} exits ${rr.code}: ${firstLines(rr.stderr)}`);
    const snapA = snapshotTree(t.root);
    if (sameSnapshot(snapA, before)) p.matched = 'before';
    else if (sameSnapshot(snapA, after)) p.matched = 'after';
    else {
      p.matched = 'neither';
      const db = diffSnapshots(before, snapA);
      const da = diffSnapshots(after, snapA);
      const [name, d] = db.length < da.length ? ['before', db] : ['after', da];
      p.problems.push(`(a) after ${recovery} the tree is neither "before" nor "after"; vs "${name}":\n      ${d.slice(0, 12).join('\n      ')}${d.length > 12 ? `\n      … ${d.length - 12} more` : ''}`);
    }
    const rb = await kb(cmd);
    if (rb.code !== rerunExit(snapA)) p.problems.push(`(b) re-running exits ${rb.code}: ${firstLines(rb.stderr)}`);
    const db = diffSnapshots(after, snapshotTree(t.root));
    if (db.length) p.problems.push(`(b) after re-running, vs "after":\n      ${db.slice(0, 12).join('\n      ')}${db.length > 12 ? `\n      … ${db.length - 12} more` : ''}`);
    const st = await kb(sc.status(t));
    if (st.stdout !== cleanStatus.stdout) p.problems.push(`(c) status prints ${JSON.stringify(st.stdout)}, clean run ${JSON.stringify(cleanStatus.stdout)}`);
    return p;
  };

  const full = fullSweep();
  if (full) {
    // As many N as it takes: up to and including the first run nothing reaches.
    for (const s of MUTATING_SYSCALLS) {
      for (let n = 1; ; n++) {
        const p = await tryPoint(s, n);
        points.push(p);
        if (p.killed === 'none') break;
      }
    }
  } else {
    for (const { syscall, n } of planSubset(profile.log.maxCount, killBudget())) points.push(await tryPoint(syscall, n));
  }

  // Determinism: the same N again must kill at the same call (first, middle, last killed point).
  const killedPoints = points.filter((p) => p.killed !== 'none');
  const picks = [...new Set([0, Math.floor(killedPoints.length / 2), killedPoints.length - 1])].filter((i) => i >= 0 && i < killedPoints.length);
  const determinism: ScenarioReport['determinism'] = [];
  for (const i of picks) {
    const p = killedPoints[i]!;
    await restore();
    let again = await runKilledAsync(cmd, { syscall: p.syscall, n: p.n }, { logDir, root: t.root, env: { TMPDIR: tmp } });
    // Node's main and pool threads each count their own calls, and on a loaded machine the two can
    // now and then swap which reaches N first; a site counts as reproducible when one of two more runs hits it.
    if (again.site !== p.site) {
      await restore();
      again = await runKilledAsync(cmd, { syscall: p.syscall, n: p.n }, { logDir, root: t.root, env: { TMPDIR: tmp } });
    }
    determinism.push({ point: `${p.syscall}#${p.n}`, first: p.site, second: again.site });
  }
  for (const d of determinism) if (d.first !== d.second) harness.push(`not deterministic at ${d.point}: "${d.first}" then "${d.second}"`);

  const byKbundle = points.filter((p) => p.killed === 'kbundle').length;
  const byChild = points.filter((p) => p.killed === 'child').length;
  const consistent = killedPoints.filter((p) => p.problems.length === 0).length;
  const total = Date.now() - t0;
  const figure =
    `[kill-points] ${sc.label}: ${points.length} points (${full ? 'full' : `subset, budget ${killBudget()}`}), ` +
    `killed kbundle ${byKbundle}, killed a child ${byChild}, unkilled ${points.length - killedPoints.length}; ` +
    `consistent ${consistent}/${killedPoints.length}; deterministic ${determinism.filter((d) => d.first === d.second).length}/${determinism.length}; ` +
    `${(total / 1000).toFixed(1)} s (clean run ${cleanMs} ms, traced kill run ${killRuns ? Math.round(killMs / killRuns) : 0} ms)`;
  const report: ScenarioReport = {
    label: sc.label,
    full,
    points,
    harness,
    determinism,
    counts: profile.log.maxCount,
    ms: { total, cleanRun: cleanMs, killRunAvg: killRuns ? Math.round(killMs / killRuns) : 0 },
    figure,
  };
  const dir = process.env.KBUNDLE_KILL_REPORT;
  if (dir) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${sc.label.replace(/[^\w.+-]+/g, '_')}.json`), JSON.stringify(report, null, 2));
  }
  console.log(figure);
  return report;
}

/** One message listing every inconsistent point (what the assertion shows when it fails). */
export function failures(r: ScenarioReport): string[] {
  return [
    ...r.harness.map((h) => `harness: ${h}`),
    ...r.points.filter((p) => p.problems.length).map((p) => `${p.syscall}#${p.n} [${p.killed}: ${p.site}] exit ${p.exit}, recovery ${p.recovery}:\n    ${p.problems.join('\n    ')}`),
  ];
}

/** One core lifecycle command under kill points: on a 6.1 and the 6.12 kernel, and on 6.12 with a distribution hello. */
export interface CoreKillCase {
  op: string;
  /** Test title for kernel `k`; `original` adds the in-tree variant's words. */
  title: (k: string) => string;
  originalWords: string;
  /** The DKMS state before the command (after layout, original and depmod). */
  state: (t: Trees, k: string) => void;
  command: (t: Trees, k: string) => string[];
  /** Where the distribution's bytes must be after a clean run: in the archive, or back in place. */
  original: 'archived' | 'restored';
  originalNote: string;
}

export function describeCoreKillPoints(c: CoreKillCase): void {
  const [K61, K612] = twoKernels();
  describe(`kill points: ${c.op}`, () => {
    for (const [k, original] of [
      [K61, false],
      [K612, false],
      [K612, true],
    ] as const) {
      test.concurrent(`${c.title(k)}${original ? `, ${c.originalWords}` : ''}`, async ({ expect }) => {
        let placed = '';
        let placedBytes = Buffer.alloc(0);
        const r = await runKillScenario({
          label: `${c.op} ${k}${original ? ' original' : ''}`,
          prepare(t: Trees) {
            layout(t, k);
            if (original) {
              placed = placeOriginal(t, k);
              placedBytes = readFileSync(placed);
            }
            depmod(t, k);
            c.state(t, k);
          },
          command: (t) => c.command(t, k),
          status: (t) => ['status', ...t.treeArgs],
          recover: (t) => ['bundle', 'recover', '-k', k, ...t.treeArgs],
          checkAfter(t) {
            if (!original) return;
            const where = c.original === 'archived' ? join(t.dkmsTree, 'hello/original_module', k, 'x86_64', placed.split('/').pop()!) : placed;
            expect(readFileSync(where).equals(placedBytes), c.originalNote).toBe(true);
          },
        });
        expect(failures(r)).toEqual([]);
      }, KILL_TEST_TIMEOUT);
    }
  });
}
