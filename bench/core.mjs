#!/usr/bin/env node
// Core benchmark: kbundle vs Debian's real dkms on the same machine, same run.
//   1. cold build of one module for 3 kernels (dkms: one kernel after another,
//      as its `build -k A -k B` builds only A; kbundle: one command, concurrent)
//   2. cache-hit rebuild (kbundle build --force with a warm cache) vs dkms cold
//   3. `status` over 500 module x kernel entries
// Usage: node bench/core.mjs [--runs N] [--module bundles/hello-1.0]
// Prints a table of medians and ratios and writes bench/results/core.json.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { opt } from './args.mjs';

const repo = resolve(dirname(new URL(import.meta.url).pathname), '..');
const RUNS = Number(opt('--runs', '3'));
const MODULE_DIR = resolve(repo, opt('--module', 'bundles/hello-1.0'));
const conf = readFileSync(join(MODULE_DIR, 'dkms.conf'), 'utf8');
const M = /PACKAGE_NAME="?([^"\n]+)/.exec(conf)[1];
const V = /PACKAGE_VERSION="?([^"\n]+)/.exec(conf)[1];

const kernels = readdirSync('/lib/modules')
  .filter((k) => existsSync(`/lib/modules/${k}/build/include`))
  .sort()
  .slice(-3);
if (kernels.length < 3) {
  console.error(`need 3 kernel header sets, found ${kernels.join(', ')}`);
  process.exit(1);
}

function scratch(tag) {
  const root = mkdtempSync(join(tmpdir(), `kbundle-bench-${tag}-`));
  const r = { root, dkms: join(root, 'var/lib/dkms'), src: join(root, 'usr/src'), lib: join(root, 'lib/modules'), etc: join(root, 'etc/dkms'), varlib: join(root, 'varlib') };
  for (const d of [r.dkms, r.src, r.lib, r.etc, r.varlib]) mkdirSync(d, { recursive: true });
  for (const k of kernels) {
    mkdirSync(join(r.lib, k), { recursive: true });
    symlinkSync(`/lib/modules/${k}/build`, join(r.lib, k, 'build'));
    // Same compression decision as the real tree (Debian 6.12: xz).
    const net = `/lib/modules/${k}/kernel/drivers/net`;
    if (existsSync(net)) {
      const d = readdirSync(net).find((n) => n.startsWith('dummy.ko'));
      if (d) {
        mkdirSync(join(r.lib, k, 'kernel/drivers/net'), { recursive: true });
        cpSync(join(net, d), join(r.lib, k, 'kernel/drivers/net', d));
      }
    }
  }
  cpSync(MODULE_DIR, join(r.src, `${M}-${V}`), { recursive: true });
  r.tree = ['--dkmstree', r.dkms, '--sourcetree', r.src, '--installtree', r.lib];
  return r;
}

function timed(cmd, args) {
  const t0 = process.hrtime.bigint();
  const p = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 << 20 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (p.status !== 0) {
    console.error(`${cmd} ${args.join(' ')} failed (${p.status})\n${p.stdout}\n${p.stderr}`);
    process.exit(1);
  }
  return ms;
}
// dkms hard-codes /etc/dkms and /var/lib/dkms/mok.key: give it private copies.
const dkms = (r, args) =>
  timed('unshare', ['-m', 'sh', '-c', 'mount --bind "$1" /etc/dkms && mount --bind "$2" /var/lib/dkms && shift 2 && exec /usr/sbin/dkms "$@"', 'sh', r.etc, r.varlib, ...args, ...r.tree, '--no-depmod']);
const kb = (r, args) => timed(process.execPath, [join(repo, 'bin/kbundle'), ...args, ...r.tree, '--etcdir', r.etc]);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const results = { kernels, module: `${M}/${V}`, runs: RUNS, nproc: (await import('node:os')).availableParallelism() };

// The raw make floor: the same module built with plain kbuild for the 3
// kernels, (a) one after another with -j$(nproc) as dkms does, (b) all at
// once with -j1 each. No tool can build faster than (b) on this machine.
function makeFloor(parallel) {
  const dirs = kernels.map((k) => {
    const d = mkdtempSync(join(tmpdir(), 'kbundle-bench-floor-'));
    cpSync(MODULE_DIR, d, { recursive: true });
    return [k, d];
  });
  const cmds = dirs.map(([k, d]) => `make ${parallel ? '-j1' : `-j${results.nproc}`} -C /lib/modules/${k}/build M=${d} modules >/dev/null 2>&1`);
  const script = parallel ? `${cmds.map((c) => `(${c}) &`).join(' ')} wait` : cmds.join(' && ');
  const ms = timed('bash', ['-c', script]);
  for (const [, d] of dirs) rmSync(d, { recursive: true, force: true });
  return ms;
}

// 1. cold builds
const dkmsCold = [];
const kbCold = [];
const kbHit = [];
for (let i = 0; i < RUNS; i++) {
  const d = scratch('dkms');
  dkms(d, ['add', `${M}/${V}`]);
  let t = 0;
  for (const k of kernels) t += dkms(d, ['build', `${M}/${V}`, '-k', k]);
  dkmsCold.push(t);
  // Same signing work on both sides: kbundle signs with the key dkms generated.
  const r = scratch('kb');
  cpSync(join(d.varlib, 'mok.key'), join(r.dkms, 'mok.key'));
  cpSync(join(d.varlib, 'mok.pub'), join(r.dkms, 'mok.pub'));
  const ks = kernels.flatMap((k) => ['-k', k]);
  kbCold.push(kb(r, ['build', `${M}/${V}`, ...ks, '-q']));
  kbHit.push(kb(r, ['build', `${M}/${V}`, ...ks, '-q', '--force']));
  rmSync(d.root, { recursive: true, force: true });
  rmSync(r.root, { recursive: true, force: true });
}
const floorSerial = [];
const floorParallel = [];
for (let i = 0; i < RUNS; i++) {
  floorSerial.push(makeFloor(false));
  floorParallel.push(makeFloor(true));
}
results.build = {
  dkmsColdMs: median(dkmsCold),
  kbundleColdMs: median(kbCold),
  kbundleCacheHitMs: median(kbHit),
  makeSerialMs: median(floorSerial),
  makeParallelMs: median(floorParallel),
  all: { dkmsCold, kbCold, kbHit, floorSerial, floorParallel },
};

// 2. status over 500 entries: 100 modules x 5 kernel dirs, a tree as kbundle
// writes it (build records included), read by both tools.
const s = scratch('status');
const ks = kernels.flatMap((k) => ['-k', k]);
kb(s, ['build', `${M}/${V}`, ...ks, '-q']);
const builtDir = join(s.dkms, M, V, kernels[0], 'x86_64');
const fakeKernels = ['6.1.0-90-amd64', '6.1.0-91-amd64', '6.1.0-92-amd64', '6.1.0-93-amd64', '6.1.0-94-amd64'];
for (let i = 0; i < 100; i++) {
  const name = `bench${String(i).padStart(3, '0')}`;
  const src = join(s.src, `${name}-1.0`);
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'dkms.conf'), `PACKAGE_NAME="${name}"\nPACKAGE_VERSION="1.0"\nBUILT_MODULE_NAME[0]="${M}"\nDEST_MODULE_LOCATION[0]="/extra"\n`);
  mkdirSync(join(s.dkms, name, '1.0'), { recursive: true });
  symlinkSync(src, join(s.dkms, name, '1.0', 'source'));
  for (const k of fakeKernels) {
    const kad = join(s.dkms, name, '1.0', k, 'x86_64');
    mkdirSync(dirname(kad), { recursive: true });
    cpSync(builtDir, kad, { recursive: true });
  }
}
const dkmsStatus = [];
const kbStatus = [];
for (let i = 0; i < RUNS; i++) {
  dkmsStatus.push(dkms(s, ['status']));
  kbStatus.push(kb(s, ['status']));
}
results.status = { entries: 500, dkmsMs: median(dkmsStatus), kbundleMs: median(kbStatus), all: { dkmsStatus, kbStatus } };
rmSync(s.root, { recursive: true, force: true });

const b = results.build;
const st = results.status;
const rows = [
  ['cold build, 3 kernels', b.dkmsColdMs, b.kbundleColdMs, b.kbundleColdMs / b.dkmsColdMs, '<= 0.50'],
  ['cache-hit rebuild vs dkms cold', b.dkmsColdMs, b.kbundleCacheHitMs, b.kbundleCacheHitMs / b.dkmsColdMs, '<= 0.05'],
  ['status, 500 entries', st.dkmsMs, st.kbundleMs, st.kbundleMs / st.dkmsMs, '<= 0.05 (>= 20x)'],
  ['floor: plain make, serial -j nproc (dkms order)', b.dkmsColdMs, b.makeSerialMs, b.makeSerialMs / b.dkmsColdMs, '-'],
  ['floor: plain make, 3 at once -j1', b.dkmsColdMs, b.makeParallelMs, b.makeParallelMs / b.dkmsColdMs, '-'],
  ['kbundle cold vs the parallel make floor', b.makeParallelMs, b.kbundleColdMs, b.kbundleColdMs / b.makeParallelMs, '-'],
];
console.log(`kernels: ${kernels.join(', ')}; module ${M}/${V}; ${RUNS} runs, medians; ${results.nproc} cores`);
console.log('| case | reference ms | measured ms | ratio | target |');
console.log('|---|---|---|---|---|');
for (const [n, d, k, ratio, target] of rows) console.log(`| ${n} | ${d.toFixed(0)} | ${k.toFixed(0)} | ${ratio.toFixed(3)} | ${target} |`);
mkdirSync(join(repo, 'bench/results'), { recursive: true });
writeFileSync(join(repo, 'bench/results/core.json'), JSON.stringify(results, null, 2));
