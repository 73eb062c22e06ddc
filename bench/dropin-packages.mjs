#!/usr/bin/env node
// The package path: `dpkg -i <pkg>-dkms.deb` runs the package's postinst,
// which runs /usr/lib/dkms/common.postinst, which calls dkms once per step
// and kernel (status, build, install). Timed in throwaway copies of this
// machine (test/dropin/sandbox.sh) for three setups, in the same run:
//   dkms            Debian's dkms 3.0.10 (the reference)
//   kbundle         `kbundle dropin install`: /usr/sbin/dkms and common.postinst are kbundle's
//   kbundle-percall only /usr/sbin/dkms is kbundle's; Debian's common.postinst calls it per kernel and step
// cold = first install in a fresh copy (empty build cache); warm = the same
// package installed again after `dpkg --purge` (kbundle's cache is kept in
// /var/cache/kbundle, as on a real system). Also: one `dkms status -m -v -k`
// call, the query common.postinst makes before every build and install.
//
//   node bench/dropin-packages.mjs [--runs 1] [--packages acpi-call-dkms,bbswitch-dkms]
// Needs root, overlayfs, dkms, headers for the kernels; writes bench/results/dropin-packages.json.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadavg } from 'node:os';
import { opt } from './args.mjs';

const loadBefore = loadavg();

const runs = Number(opt('--runs', '1'));
const packages = opt('--packages', 'acpi-call-dkms,bbswitch-dkms').split(',');
const repo = resolve('.');
const sandbox = join(repo, 'test/dropin/sandbox.sh');
const debDir = join(process.env.KBUNDLE_TEST_CACHE || '/tmp/kbundle-test-cache', 'debs');
mkdirSync(debDir, { recursive: true });

function deb(pkg) {
  const find = () => readdirSync(debDir).find((n) => n.startsWith(`${pkg}_`) && n.endsWith('.deb'));
  if (!find()) execFileSync('apt-get', ['download', pkg], { cwd: debDir, stdio: 'ignore' });
  return join(debDir, find());
}

function inBox(state, script) {
  const t = process.hrtime.bigint();
  const r = spawnSync('bash', [sandbox, state, 'bash', '-c', script], { encoding: 'utf8', maxBuffer: 1 << 28 });
  return { s: Number(process.hrtime.bigint() - t) / 1e9, code: r.status, out: r.stdout + r.stderr, stdout: r.stdout };
}

const SETUP = {
  dkms: 'true',
  kbundle: `${repo}/bin/kbundle dropin install >/dev/null`,
  'kbundle-percall': `${repo}/bin/kbundle dropin install >/dev/null && cp /usr/lib/dkms/common.postinst.distrib /usr/lib/dkms/common.postinst`,
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// Runs interleave the setups (run 1: dkms, kbundle, kbundle-percall; run 2: the same ...), so a
// change of machine load during the benchmark hits all three alike; medians are reported.
const results = new Map();
for (let i = 0; i < runs; i++) {
  for (const pkg of packages) {
    const file = deb(pkg);
    for (const [mode, setup] of Object.entries(SETUP)) {
      const key = `${pkg}\t${mode}`;
      if (!results.has(key)) results.set(key, { cold: [], warm: [], status: [], codes: '' });
      const r = results.get(key);
      const state = mkdtempSync('/var/tmp/kbundle-bench-');
      try {
        const s = inBox(state, setup);
        if (s.code !== 0) throw new Error(`${mode} setup failed:\n${s.out}`);
        const c = inBox(state, `dpkg -i ${file} >/dev/null 2>&1`);
        const st = inBox(state, `m=$(dkms status | head -1 | cut -d/ -f1); v=$(dkms status | head -1 | cut -d/ -f2 | cut -d, -f1); k=$(dkms status | head -1 | cut -d' ' -f2 | tr -d ,); s=$(date +%s%N); for i in 1 2 3 4 5 6 7 8 9 10; do dkms status -m $m -v $v -k $k >/dev/null; done; echo $(( ($(date +%s%N) - s) / 10000000 ))`);
        inBox(state, `dpkg --purge ${pkg} >/dev/null 2>&1`);
        const w = inBox(state, `dpkg -i ${file} >/dev/null 2>&1`);
        r.cold.push(c.s);
        r.warm.push(w.s);
        // stdout only: dkms writes 'write error: Broken pipe' to stderr when head closes the pipe
        r.status.push(Number(st.stdout.trim().split('\n').pop()));
        r.codes = `${c.code}/${w.code}`;
        console.error(`run ${i + 1} ${pkg} ${mode}: cold ${c.s.toFixed(1)} s, warm ${w.s.toFixed(1)} s, status call ${r.status.at(-1)} ms (dpkg exit ${r.codes})`);
      } finally {
        rmSync(state, { recursive: true, force: true });
      }
    }
  }
}
const rows = [];
for (const [key, r] of results) {
  const [pkg, mode] = key.split('\t');
  rows.push({ package: pkg.replace(/-dkms$/, ''), mode, runs: r.cold.length, cold: median(r.cold), warm: median(r.warm), statusCallMs: median(r.status), coldRuns: r.cold, warmRuns: r.warm, statusRuns: r.status, exitCodes: r.codes });
}

const ref = (pkg) => rows.find((x) => x.package === pkg && x.mode === 'dkms');
console.log('| package | setup | dpkg -i cold (s) | × vs dkms | dpkg -i warm (s) | × vs dkms | one `dkms status -m -v -k` (ms) | × vs dkms |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const d = ref(r.package);
  const x = (a, b) => (b / a).toFixed(2);
  console.log(`| ${r.package} | ${r.mode} | ${r.cold.toFixed(1)} | ${x(r.cold, d.cold)} | ${r.warm.toFixed(1)} | ${x(r.warm, d.warm)} | ${r.statusCallMs} | ${x(r.statusCallMs, d.statusCallMs)} |`);
}
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/dropin-packages.json', `${JSON.stringify({ runs, loadavg1: { before: loadBefore[0], after: loadavg()[0] }, nproc: Number(execFileSync('nproc', { encoding: 'utf8' })), rows }, null, 2)}\n`);
