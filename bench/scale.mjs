#!/usr/bin/env node
// The matrix at scale: one bundle of bundles/hello-1.0 for every kernel header set the Debian 12
// archive serves for amd64 (6.1 and 6.12 series; amd64, cloud-amd64, rt-amd64 flavours) plus
// arm64 for two of them, built as two `--shard`s (as two CI jobs would) and merged.
// Reports: header fetch time, wall time per shard, time per target, bundle size, and a rerun of
// both shards against the same build cache (cache hits, wall time). docs/scale.md has the figures.
//
// Usage: node bench/scale.mjs [--max N] [--arm64 N] [--headers DIR] [--work DIR] [-j J]
//   --max N      use N amd64 targets spread over series and flavours instead of all (a reduced run)
//   --arm64 N    arm64 targets (default 2: the newest 6.1 and 6.12 ABI)
//   --headers    where `kbundle headers fetch` keeps trees (default $KBUNDLE_HEADERS_DIR or ~/.cache/kbundle/headers)
// Needs network (apt-get download) and the packages .ci/setup installs. Writes bench/results/scale.json.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, statSync, writeFileSync, cpSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { opt } from './args.mjs';

const repo = resolve(dirname(new URL(import.meta.url).pathname), '..');
const max = opt('--max') ? Number(opt('--max')) : Infinity;
const armCount = Number(opt('--arm64', '2'));
const headersRoot = resolve(opt('--headers', process.env.KBUNDLE_HEADERS_DIR ?? join(homedir(), '.cache/kbundle/headers')));
const work = resolve(opt('--work', mkdtempSync(join(tmpdir(), 'kbundle-scale-'))));
const jobs = opt('-j', '');
const bin = join(repo, 'bin/kbundle');

function kb(args, env = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', maxBuffer: 256 << 20, env: { ...process.env, ...env } });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`kbundle ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return { ...r, secs };
}

// ------------------------------------------------------------- the targets
const { PrivateApt } = await import(join(repo, 'dist/headers/apt.js'));
const apt = new PrivateApt(join(headersRoot, '.apt'), ['amd64', 'arm64']);
if (!apt.hasLists()) await apt.update();
const sortV = (a, b) => a.localeCompare(b, 'en', { numeric: true });
const served = (await apt.search('^linux-headers-6\\.(1\\.0-[0-9]+|12\\.[0-9]+\\+deb12)-(amd64|cloud-amd64|rt-amd64|arm64)$'))
  .map((p) => p.replace(/^linux-headers-/, ''))
  .sort(sortV);
const amd = served.filter((k) => /-(amd64|cloud-amd64|rt-amd64)$/.test(k));
const arm = served.filter((k) => k.endsWith('-arm64'));
/** Every k-th, so a reduced run still covers both series and all three flavours. */
function spread(list, n) {
  if (n >= list.length) return list;
  const out = [];
  for (let i = 0; i < n; i++) out.push(list[Math.floor((i * list.length) / n + (list.length / n) / 2)]);
  return [...new Set(out)];
}
const byFlavour = (f) => amd.filter((k) => k.endsWith(`-${f}`) && (f !== 'amd64' || !/-(cloud|rt)-amd64$/.test(k)));
let amdTargets = amd;
if (Number.isFinite(max)) {
  const per = Math.max(1, Math.floor(max / 3));
  amdTargets = [...spread(byFlavour('amd64'), max - 2 * per), ...spread(byFlavour('cloud-amd64'), per), ...spread(byFlavour('rt-amd64'), per)].sort(sortV);
}
const newest = (re) => arm.filter((k) => re.test(k)).sort(sortV).pop();
const armTargets = [newest(/^6\.1\.0-/), newest(/^6\.12\./)].filter(Boolean).slice(0, armCount);
console.error(`archive serves ${amd.length} amd64 header sets (+ ${arm.length} arm64); building ${amdTargets.length} amd64 + ${armTargets.length} arm64`);

// ------------------------------------------------------------- headers
const fetchArgs = (arch, ks) => ['headers', 'fetch', ...ks, '--arch', arch, '--root', headersRoot, '--json', '-q'];
const fAmd = kb(fetchArgs('amd64', amdTargets));
const fArm = armTargets.length ? kb(fetchArgs('arm64', armTargets)) : { stdout: '[]', secs: 0 };
const trees = [...JSON.parse(fAmd.stdout), ...JSON.parse(fArm.stdout)];
const downloaded = trees.filter((t) => !t.reused).length;

// ------------------------------------------------------------- manifest
const proj = join(work, 'proj');
mkdirSync(proj, { recursive: true });
cpSync(join(repo, 'bundles/hello-1.0'), join(proj, 'hello-1.0'), { recursive: true });
cpSync(join(repo, 'bundles/keys'), join(proj, 'keys'), { recursive: true });
const manifest = join(proj, 'kbundle.yaml');
writeFileSync(
  manifest,
  [
    'apiVersion: kbundle/v1',
    'source: hello-1.0',
    'kernels:',
    ...trees.map((t) => `  - release: ${t.kernel}\n    headers: ${t.headers}`),
    `arches: [${[...new Set(trees.map((t) => t.arch))].sort().join(', ')}]`,
    'signing: {moduleKey: keys/example-module.key, moduleCert: keys/example-module.der, hash: sha256}',
    'bundleKey: keys/example-bundle.key',
    'sourceDateEpoch: 1700000000',
    '',
  ].join('\n'),
);

// ------------------------------------------------------------- builds
const cache = join(work, 'cache');
function shards(tag) {
  const out = [];
  for (const i of [1, 2]) {
    const file = join(work, `${tag}.shard-${i}.kbundle`);
    const r = kb(['bundle', 'build', manifest, '--shard', `${i}/2`, '-o', file, '--cache-dir', cache, ...(jobs ? ['-j', jobs] : [])]);
    const cached = (r.stderr.match(/: cached in /g) ?? []).length;
    const built = (r.stderr.match(/: done in /g) ?? []).length;
    out.push({ shard: `${i}/2`, secs: r.secs, built, cached, file, size: statSync(file).size });
  }
  const merged = join(work, `${tag}.kbundle`);
  const m = kb(['bundle', 'merge', ...out.map((s) => s.file), '-o', merged, '--sign-key', join(proj, 'keys/example-bundle.key')]);
  return { shards: out, mergeSecs: m.secs, file: merged, size: statSync(merged).size };
}
const cold = shards('cold');
const warm = shards('warm');
const same = spawnSync('cmp', [cold.file, warm.file]).status === 0;
const ls = JSON.parse(kb(['bundle', 'ls', cold.file, '--json', '--key', join(proj, 'keys/example-bundle.pub')]).stdout);

const targets = trees.length;
const result = {
  date: new Date().toISOString(),
  served: { amd64: amd.length, arm64: arm.length },
  targets,
  kernels: trees.map((t) => `${t.kernel}/${t.arch}`),
  headers: { fetchSecs: +(fAmd.secs + fArm.secs).toFixed(1), downloaded, reused: targets - downloaded },
  cold: { ...cold, perTargetSecs: +(cold.shards.reduce((n, s) => n + s.secs, 0) / targets).toFixed(2) },
  warm: { ...warm, perTargetSecs: +(warm.shards.reduce((n, s) => n + s.secs, 0) / targets).toFixed(2) },
  rerunByteIdentical: same,
  bundleTargets: ls.targets.length,
  elf: [...new Set(ls.targets.map((t) => t.elf))],
};
mkdirSync(join(repo, 'bench/results'), { recursive: true });
writeFileSync(join(repo, 'bench/results/scale.json'), `${JSON.stringify(result, null, 2)}\n`);

const f = (s) => `${s.toFixed(1)} s`;
const kib = (b) => `${(b / 1024).toFixed(1)} KiB`;
console.log(`| run | shard 1/2 | shard 2/2 | merge | built / cached | per target (sum of shards / targets) | bundle |`);
console.log(`|---|---|---|---|---|---|---|`);
for (const [name, r] of [['cold cache', result.cold], ['rerun, same cache', result.warm]]) {
  const [a, b] = r.shards;
  console.log(`| ${name} | ${f(a.secs)} (${a.built + a.cached} targets) | ${f(b.secs)} (${b.built + b.cached} targets) | ${f(r.mergeSecs)} | ${a.built + b.built} / ${a.cached + b.cached} | ${r.perTargetSecs} s | ${kib(r.size)} |`);
}
console.log(`\n${targets} targets (${result.kernels.join(', ')}); headers: ${downloaded} fetched, ${targets - downloaded} reused, ${f(result.headers.fetchSecs)}; rerun byte-identical: ${same}; ELF machines in the bundle: ${result.elf.join(', ')}`);
