#!/usr/bin/env node
// Installer benchmark: verify + select + place for a bundle of >= 20 kernels, depmod excluded.
// The 20 targets are fabricated: the real CLI builds hello for the 3 kernels with headers,
// then writeBundle writes a bundle with those 3 targets plus 17 more that reuse the 6.12
// binary under distinct release names (6.12.117+deb12-benchNN-amd64). Selection therefore
// ranks 20 groups, and verification hashes every blob, as for a real 20-kernel bundle.
// Steps (in-process, dist/, median of --runs, fresh scratch tree each run):
//   verify   openBundle: tar scan, every blob hashed, signature, graph
//   plan     target facts + selection (preparePlan)
//   install  installBundle --no-depmod: verify + lock + plan + stage + journal + commit
// Usage: node bench/installer.mjs [--runs N]   (writes bench/results/installer.json)
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const repo = resolve(dirname(new URL(import.meta.url).pathname), '..');
const argv = process.argv.slice(2);
const runs = Number(argv.includes('--runs') ? argv[argv.indexOf('--runs') + 1] : 7);
const K = '6.12.117+deb12-amd64';
const kernels = readdirSync('/lib/modules').filter((k) => spawnSync('test', ['-d', `/lib/modules/${k}/build/include`]).status === 0).sort();
if (!kernels.includes(K)) throw new Error(`bench needs ${K} headers and modules`);

const { openBundle } = await import(join(repo, 'dist/bundle/read/open.js'));
const { loadPublicKey, loadSecretKey } = await import(join(repo, 'dist/sign/minisign.js'));
const { writeBundle } = await import(join(repo, 'dist/bundle/write/writer.js'));
const { installBundle } = await import(join(repo, 'dist/deploy/deploy.js'));
const { preparePlan } = await import(join(repo, 'dist/deploy/prepare.js'));

const work = mkdtempSync(join(tmpdir(), 'kbundle-bench-inst-'));
const keys = join(repo, 'bundles/keys');
writeFileSync(
  join(work, 'kbundle.yaml'),
  `apiVersion: kbundle/v1\nsource: ${repo}/bundles/hello-1.0\nkernels:\n${kernels.map((k) => `  - "${k}"`).join('\n')}\narches: [x86_64]\nsigning:\n  moduleKey: ${keys}/example-module.key\n  moduleCert: ${keys}/example-module.der\n  hash: sha256\nbundleKey: ${keys}/example-bundle.key\n`,
);
const real = join(work, 'real.kbundle');
const b = spawnSync(process.execPath, [join(repo, 'bin/kbundle'), 'bundle', 'build', join(work, 'kbundle.yaml'), '-o', real, '-q'], { env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' }, encoding: 'utf8' });
if (b.status !== 0) throw new Error(b.stderr);

// Re-use the real binaries: blobs out, then 20 targets in.
const pub = await loadPublicKey(join(keys, 'example-bundle.pub'));
const src = await openBundle(real, { trustedKeys: [pub] });
const blobs = join(work, 'blobs');
await src.copyBlobsTo(blobs);
const pkg = src.index.packages[0];
const targetSpec = (t, release) => ({
  kernelRelease: release,
  arch: t.arch,
  vermagic: t.vermagic.replace(t.kernelRelease, release),
  symversDigest: t.config.symversDigest,
  modules: t.modules.map((m) => {
    const f = join(work, `${m.digest.slice(7)}-${m.file}`);
    cpSync(join(blobs, m.digest.slice(7)), f);
    return { name: m.name, file: f, destLocation: m.destLocation, srcversion: m.srcversion, depends: m.depends, versions: m.versions, sig: m.sig };
  }),
});
const targets = pkg.targets.map((t) => targetSpec(t, t.kernelRelease));
const base = pkg.targets.find((t) => t.kernelRelease === K);
for (let i = 0; targets.length < 20; i++) targets.push(targetSpec(base, `6.12.117+deb12-bench${String(i).padStart(2, '0')}-amd64`));
const file = join(work, 'twenty.kbundle');
await writeBundle(
  { name: 'hello', version: '1.0', sourceDateEpoch: 1700000000, signingKey: await loadSecretKey(join(keys, 'example-bundle.key')), packages: [{ name: pkg.name, version: pkg.version, modules: pkg.config.modules, source: { dir: join(repo, 'bundles/hello-1.0') }, targets }] },
  file,
);

function scratch() {
  const root = mkdtempSync(join(work, 'root-'));
  const roots = { dkmsTree: join(root, 'var/lib/dkms'), sourceTree: join(root, 'usr/src'), installTree: join(root, 'lib/modules') };
  for (const d of Object.values(roots)) mkdirSync(d, { recursive: true });
  mkdirSync(join(roots.installTree, K, 'kernel/drivers/net'), { recursive: true });
  symlinkSync(`/lib/modules/${K}/build`, join(roots.installTree, K, 'build'));
  cpSync(`/lib/modules/${K}/kernel/drivers/net/dummy.ko.xz`, join(roots.installTree, K, 'kernel/drivers/net/dummy.ko.xz'));
  const ctx = {
    roots, etcDir: join(root, 'etc/dkms'), framework: {}, jobs: 1, force: false, noCache: true, cacheDir: join(root, 'cache'),
    noDepmod: true, quiet: true, verbose: false, osRelease: { ID: 'debian' }, directives: [],
    progress: { start() {}, step() {}, finish() {} }, say() {}, warn() {},
  };
  return { root, ctx };
}

const req = { root: '/', kernel: K, arch: 'x86_64', signatureChecked: true, allowDowngrade: false, requireTrustedSigner: false, force: false };
const times = { verify: [], plan: [], install: [] };
for (let i = 0; i < runs + 1; i++) {
  const { root, ctx } = scratch();
  let t = performance.now();
  const opened = await openBundle(file, { trustedKeys: [pub] });
  const verify = performance.now() - t;
  t = performance.now();
  const { plan } = await preparePlan(ctx, opened, req);
  const planMs = performance.now() - t;
  if (plan.packages[0].level !== 'exact' || opened.index.packages[0].targets.length < 20) throw new Error('bench bundle is not what it should be');
  t = performance.now();
  await installBundle(ctx, file, { ...req, trustedKeys: [pub], lockTimeoutMs: 1000 });
  const install = performance.now() - t;
  if (i > 0) {
    // the first run warms the page cache and the module loader
    times.verify.push(verify);
    times.plan.push(planMs);
    times.install.push(install);
  }
  rmSync(root, { recursive: true, force: true });
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const size = (await import('node:fs')).statSync(file).size;
const result = { targets: targets.length, bundleBytes: size, runs, verifyMs: median(times.verify), planMs: median(times.plan), installMs: median(times.install) };
mkdirSync(join(repo, 'bench/results'), { recursive: true });
writeFileSync(join(repo, 'bench/results/installer.json'), `${JSON.stringify(result, null, 2)}\n`);
console.log(`\n## Installer (${targets.length} targets, ${(size / 1024).toFixed(0)} KiB bundle, median of ${runs}, depmod excluded)\n`);
console.log('| Step | Median |\n|---|---|');
console.log(`| verify (openBundle) | ${result.verifyMs.toFixed(1)} ms |`);
console.log(`| facts + select (preparePlan) | ${result.planMs.toFixed(1)} ms |`);
console.log(`| install total: verify + lock + plan + stage + journal + place | ${result.installMs.toFixed(1)} ms |`);
console.log(`\ntarget < 1000 ms: ${result.installMs < 1000 ? 'met' : 'NOT met'}`);
rmSync(work, { recursive: true, force: true });
