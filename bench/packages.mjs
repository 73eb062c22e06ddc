#!/usr/bin/env node
// Package builders: wall time of each format for the example module (bundles/hello-1.0) and
// two kernels (one 6.1, one 6.12), from the DKMS tree and from a signed bundle (which adds the
// verification of the bundle). Real tools (dpkg-buildpackage, dpkg-source, dpkg-deb, rpmbuild,
// createrepo_c, xorriso); each run writes into a fresh directory. Median of --runs (default 3).
// Usage: node bench/packages.mjs [--runs N]   (writes bench/results/packages.json)
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const repo = resolve(dirname(new URL(import.meta.url).pathname), '..');
const argv = process.argv.slice(2);
const runs = Number(argv.includes('--runs') ? argv[argv.indexOf('--runs') + 1] : 3);
const all = readdirSync('/lib/modules').filter((k) => spawnSync('test', ['-d', `/lib/modules/${k}/build/include`]).status === 0).sort();
const kernels = [all.find((k) => k.startsWith('6.1.')), all.find((k) => k.startsWith('6.12.'))].filter(Boolean);
if (kernels.length !== 2) throw new Error(`need a 6.1 and a 6.12 header set, found ${all.join(' ')}`);
const keys = join(repo, 'bundles/keys');
const env = { ...process.env, SOURCE_DATE_EPOCH: '1700000000' };
const kb = (args, cwd) => {
  const r = spawnSync(process.execPath, [join(repo, 'bin/kbundle'), ...args], { env, cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kbundle ${args.join(' ')}: ${r.stderr}`);
};

const work = mkdtempSync(join(tmpdir(), 'kbundle-bench-pkg-'));
const t = { dkms: join(work, 'var/lib/dkms'), src: join(work, 'usr/src'), mods: join(work, 'lib/modules'), etc: join(work, 'etc/dkms') };
for (const d of Object.values(t)) mkdirSync(d, { recursive: true });
for (const k of kernels) {
  mkdirSync(join(t.mods, k), { recursive: true });
  symlinkSync(`/lib/modules/${k}/build`, join(t.mods, k, 'build'));
}
cpSync(join(repo, 'bundles/hello-1.0'), join(t.src, 'hello-1.0'), { recursive: true });
writeFileSync(join(t.etc, 'framework.conf'), `mok_signing_key=${keys}/example-module.key\nmok_certificate=${keys}/example-module.der\n`);
const tree = ['--dkmstree', t.dkms, '--sourcetree', t.src, '--installtree', t.mods, '--etcdir', t.etc];
kb(['build', 'hello/1.0', ...kernels.flatMap((k) => ['-k', k]), ...tree, '-q']);
writeFileSync(
  join(work, 'kbundle.yaml'),
  `apiVersion: kbundle/v1\nsource: ${repo}/bundles/hello-1.0\nkernels:\n${kernels.map((k) => `  - "${k}"`).join('\n')}\narches: [x86_64]\nsigning:\n  moduleKey: ${keys}/example-module.key\n  moduleCert: ${keys}/example-module.der\n  hash: sha256\nbundleKey: ${keys}/example-bundle.key\n`,
);
const bundle = join(work, 'hello.kbundle');
kb(['bundle', 'build', join(work, 'kbundle.yaml'), '-o', bundle, '-q']);

const formats = [
  ['mkdeb', []],
  ['mkdsc', []],
  ['mkbmdeb', []],
  ['mkrpm', kernels.flatMap((k) => ['-k', k])],
  ['mkkmp', []],
  ['mkdriverdisk', ['--distro', 'rhel']],
  ['mkdriverdisk', ['--distro', 'suse', '--format', 'tar']],
];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = [];
for (const [f, extra] of formats) {
  const row = { format: `${f}${extra.includes('suse') ? ' (suse)' : f === 'mkdriverdisk' ? ' (rhel)' : ''}` };
  for (const [from, args] of [['tree', [f, 'hello/1.0', ...tree, ...extra]], ['bundle', ['bundle', f, bundle, '--trust', `${keys}/example-bundle.pub`, ...extra]]]) {
    const times = [];
    for (let i = 0; i < runs; i++) {
      const out = mkdtempSync(join(work, 'out-'));
      const t0 = process.hrtime.bigint();
      kb([...args, '-q', ...(f === 'mkdriverdisk' ? [] : ['-o', out])], out);
      times.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    row[from] = Number(median(times).toFixed(2));
  }
  results.push(row);
}
console.log(`| format (hello, ${kernels.join(' + ')}) | from the DKMS tree (s) | from a bundle (s) |\n|---|---|---|`);
for (const r of results) console.log(`| ${r.format} | ${r.tree} | ${r.bundle} |`);
mkdirSync(join(repo, 'bench/results'), { recursive: true });
writeFileSync(join(repo, 'bench/results/packages.json'), `${JSON.stringify({ kernels, runs, results }, null, 2)}\n`);
