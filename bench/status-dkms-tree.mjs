#!/usr/bin/env node
// `status` on a tree written by real dkms (no kbundle records): Debian's
// dkms 3.0.10 vs kbundle, cold (no remembered conf layouts) and warm.
//
// The tree: real dkms adds bundles/hello-1.0 and installs it for the 3
// kernels with headers on this machine (scratch roots, --no-depmod). That
// module is then cloned under more names as dkms would lay each out: a
// source dir <name>-1.0 whose dkms.conf, Makefile and .c file are renamed, a
// `source` link to it, <name>/1.0/<k>/<a>/{module/<name>.ko*,log/make.log}
// copied from hello's, the kernel-<k>-<a> link, and the installed
// <installtree>/<k>/updates/dkms/<name>.ko*. With --kernels 5 two more
// releases are made by copying one real kernel's entries (dkms itself, the
// tree and the install tree) under new names. Both tools must list every
// entry as installed, with identical output, or the benchmark stops.
//
// Usage: node bench/status-dkms-tree.mjs [--runs 3] [--cases 40x3,100x5] [--keep]
// Needs root (dkms runs in a private mount namespace, as in bench/core.mjs).
// Prints a table of medians and writes bench/results/status-dkms-tree.json.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { opt } from './args.mjs';

const repo = resolve(dirname(new URL(import.meta.url).pathname), '..');
const argv = process.argv.slice(2);
const RUNS = Number(opt('--runs', '3'));
const CASES = opt('--cases', '40x3,100x5').split(',').map((c) => c.split('x').map(Number));
const KEEP = argv.includes('--keep');
const ARCH = 'x86_64';

const realKernels = readdirSync('/lib/modules')
  .filter((k) => existsSync(`/lib/modules/${k}/build/include`))
  .sort()
  .slice(-3);
if (realKernels.length < 3) {
  console.error(`need 3 kernel header sets, found ${realKernels.join(', ')}`);
  process.exit(1);
}

function run(cmd, args, { check = true } = {}) {
  const t0 = process.hrtime.bigint();
  const p = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 << 20 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (check && p.status !== 0) {
    console.error(`${cmd} ${args.join(' ')} failed (${p.status})\n${p.stdout}\n${p.stderr}`);
    process.exit(1);
  }
  return { ms, stdout: p.stdout, stderr: p.stderr };
}

function scratch() {
  const root = mkdtempSync(join(tmpdir(), 'kbundle-bench-dkmstree-'));
  const r = { root, dkms: join(root, 'var/lib/dkms'), src: join(root, 'usr/src'), lib: join(root, 'lib/modules'), etc: join(root, 'etc/dkms'), varlib: join(root, 'varlib') };
  for (const d of [r.dkms, r.src, r.lib, r.etc, r.varlib]) mkdirSync(d, { recursive: true });
  for (const k of realKernels) {
    mkdirSync(join(r.lib, k), { recursive: true });
    symlinkSync(`/lib/modules/${k}/build`, join(r.lib, k, 'build'));
    // dkms compresses like the kernel's own modules (Debian 6.12: xz).
    const net = `/lib/modules/${k}/kernel/drivers/net`;
    const d = existsSync(net) ? readdirSync(net).find((n) => n.startsWith('dummy.ko')) : undefined;
    if (d) {
      mkdirSync(join(r.lib, k, 'kernel/drivers/net'), { recursive: true });
      cpSync(join(net, d), join(r.lib, k, 'kernel/drivers/net', d));
    }
  }
  r.tree = ['--dkmstree', r.dkms, '--sourcetree', r.src, '--installtree', r.lib];
  return r;
}

// dkms hard-codes /etc/dkms and /var/lib/dkms/mok.key: give it private copies.
const dkms = (r, args, o) =>
  run('unshare', ['-m', 'sh', '-c', 'mount --bind "$1" /etc/dkms && mount --bind "$2" /var/lib/dkms && shift 2 && exec /usr/sbin/dkms "$@"', 'sh', r.etc, r.varlib, ...args, ...r.tree, '--no-depmod'], o);
const kb = (r, args) => run(process.execPath, [join(repo, 'bin/kbundle'), ...args, ...r.tree, '--etcdir', r.etc]);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** A tree with `hello` built and installed by real dkms for the 3 real kernels. */
function dkmsBuiltTree() {
  const r = scratch();
  cpSync(join(repo, 'bundles/hello-1.0'), join(r.src, 'hello-1.0'), { recursive: true });
  dkms(r, ['add', 'hello/1.0']);
  for (const k of realKernels) dkms(r, ['install', 'hello/1.0', '-k', k]);
  return r;
}

/** Copies real kernel `from`'s entries of every module under the release name `to`. */
function fakeKernel(r, from, to) {
  for (const m of readdirSync(r.dkms).filter((n) => !n.startsWith('.'))) {
    for (const v of readdirSync(join(r.dkms, m)).filter((n) => existsSync(join(r.dkms, m, n, 'source')))) {
      cpSync(join(r.dkms, m, v, from), join(r.dkms, m, v, to), { recursive: true, verbatimSymlinks: true });
      if (existsSync(join(r.dkms, m, `kernel-${from}-${ARCH}`))) symlinkSync(`${v}/${to}/${ARCH}`, join(r.dkms, m, `kernel-${to}-${ARCH}`));
    }
  }
  mkdirSync(join(r.lib, to), { recursive: true });
  cpSync(join(r.lib, from, 'updates'), join(r.lib, to, 'updates'), { recursive: true });
}

/** `hello` again as `name`: renamed source, built and installed files, links. */
function cloneModule(r, name, kernels) {
  const src = join(r.src, `${name}-1.0`);
  cpSync(join(r.src, 'hello-1.0'), src, { recursive: true });
  const conf = readFileSync(join(src, 'dkms.conf'), 'utf8')
    .replace(/^PACKAGE_NAME=.*$/m, `PACKAGE_NAME="${name}"`)
    .replace(/^BUILT_MODULE_NAME\[0\]=.*$/m, `BUILT_MODULE_NAME[0]="${name}"`);
  writeFileSync(join(src, 'dkms.conf'), conf);
  writeFileSync(join(src, 'Makefile'), readFileSync(join(src, 'Makefile'), 'utf8').replaceAll('hello', name));
  renameSync(join(src, 'hello.c'), join(src, `${name}.c`));
  const vdir = join(r.dkms, name, '1.0');
  mkdirSync(vdir, { recursive: true });
  symlinkSync(src, join(vdir, 'source'));
  for (const k of kernels) {
    const from = join(r.dkms, 'hello/1.0', k, ARCH);
    const to = join(vdir, k, ARCH);
    cpSync(join(from, 'log'), join(to, 'log'), { recursive: true });
    mkdirSync(join(to, 'module'), { recursive: true });
    for (const f of readdirSync(join(from, 'module'))) cpSync(join(from, 'module', f), join(to, 'module', f.replace(/^hello/, name)));
    symlinkSync(`1.0/${k}/${ARCH}`, join(r.dkms, name, `kernel-${k}-${ARCH}`));
    const inst = join(r.lib, k, 'updates/dkms');
    for (const f of readdirSync(inst).filter((n) => /^hello\.ko/.test(n))) cpSync(join(inst, f), join(inst, f.replace(/^hello/, name)));
  }
}

function buildCase(modules, nKernels) {
  const r = dkmsBuiltTree();
  const kernels = [...realKernels];
  for (let i = 0; kernels.length < nKernels; i++) {
    const fake = `6.1.0-${90 + i}-amd64`;
    fakeKernel(r, realKernels[0], fake);
    kernels.push(fake);
  }
  for (let i = 1; i < modules; i++) cloneModule(r, `hello${String(i).padStart(3, '0')}`, kernels);
  const expected = modules * kernels.length;
  const d = dkms(r, ['status']).stdout;
  const lines = d.trim().split('\n');
  if (lines.length !== expected || !lines.every((l) => /: installed$/.test(l))) {
    console.error(`dkms status does not list the ${expected} entries as installed:\n${d}`);
    process.exit(1);
  }
  return { r, kernels, expected, dkmsOut: d };
}

const results = { runs: RUNS, nproc: availableParallelism(), kernels: realKernels, cases: [] };
for (const [modules, nKernels] of CASES) {
  const { r, kernels, expected, dkmsOut } = buildCase(modules, nKernels);
  const cacheDir = join(r.dkms, '.kbundle-cache', 'conf');
  const all = { dkms: [], cold: [], warm: [] };
  for (let i = 0; i < RUNS; i++) {
    const d = dkms(r, ['status']);
    rmSync(cacheDir, { recursive: true, force: true });
    const cold = kb(r, ['status']);
    const warm = kb(r, ['status']);
    for (const [what, out] of [['dkms', d.stdout], ['kbundle cold', cold.stdout], ['kbundle warm', warm.stdout]]) {
      if (out !== dkmsOut) {
        console.error(`${what} status differs from the first dkms status:\n${out}`);
        process.exit(1);
      }
    }
    all.dkms.push(d.ms);
    all.cold.push(cold.ms);
    all.warm.push(warm.ms);
  }
  const c = { modules, kernels, entries: expected, dkmsMs: median(all.dkms), coldMs: median(all.cold), warmMs: median(all.warm), all };
  results.cases.push(c);
  if (KEEP) console.log(`kept ${r.root}; kbundle status ${r.tree.join(' ')} --etcdir ${r.etc}`);
  else rmSync(r.root, { recursive: true, force: true });
}

console.log(`status on a dkms-written tree; kernels ${realKernels.join(', ')} (+ copies for 5); ${RUNS} runs, medians; ${results.nproc} cores`);
console.log('| modules × kernels | entries | dkms status | kbundle cold | kbundle warm | cold: faster | warm: faster |');
console.log('|---|---|---|---|---|---|---|');
for (const c of results.cases) {
  const f = (ms) => `${ms.toFixed(0)} ms`;
  console.log(`| ${c.modules} × ${c.kernels.length} | ${c.entries} | ${f(c.dkmsMs)} | ${f(c.coldMs)} | ${f(c.warmMs)} | ${(c.dkmsMs / c.coldMs).toFixed(1)}× | ${(c.dkmsMs / c.warmMs).toFixed(1)}× |`);
}
mkdirSync(join(repo, 'bench/results'), { recursive: true });
writeFileSync(join(repo, 'bench/results/status-dkms-tree.json'), JSON.stringify(results, null, 2));
