#!/usr/bin/env node
// Bundle benchmark: kbundle pack/unpack vs `tar | zstd` on the same content, same run.
//   pack    writeBundle (tar the source, zstd it on a worker thread, hash
//           every module once, copy the blobs in, sign, fsync)
//                             vs  tar -cf - -C DIR . | zstd -3 -T1 > FILE
//   unpack  openBundle (hash every blob, check signature and graph) +
//           extractSource (unzstd, bomb guard, digest, safeExtract) +
//           copyBlobsTo for the modules (read from their offsets, on the
//           reader thread while the source unpacks)
//                             vs  zstd -dc FILE | tar -xf - -C DIR
//   peak RSS of every step (/usr/bin/time -v), at two sizes to show it is flat.
// Usage: node bench/bundle.mjs [--runs N] [--sizes 176,704] [--level 3] [--tmp DIR] [--keep]
//   --sizes: MiB of input per case (36 % source tree, 64 % in 4 module files).
// Prints a markdown table of medians and ratios and writes bench/results/bundle.json.
// Unknown options (e.g. core.mjs's --module, passed through by bench/run.sh) are ignored.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync, writeSync, lstatSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { opt } from './args.mjs';

const repo = resolve(dirname(new URL(import.meta.url).pathname), '..');
const argv = process.argv.slice(2);

// ---------------------------------------------------------------- child side
// `--child pack|unpack JOB.json`: one kbundle operation in its own process, so
// /usr/bin/time -v reports that operation's peak RSS and nothing else.
if (argv[0] === '--child') {
  // Only the modules the step uses, as the CLI loads them (lazily, per command).
  const lib = {
    ...(await import(join(repo, 'dist/sign/minisign.js'))),
    ...(await import(join(repo, argv[1] === 'pack' ? 'dist/bundle/write/writer.js' : 'dist/bundle/read/open.js'))),
  };
  const job = JSON.parse(readFileSync(argv[2], 'utf8'));
  const t0 = process.hrtime.bigint();
  let out;
  if (argv[1] === 'pack') {
    const mods = job.modules.map((f, i) => ({ name: `bench${i}`, file: f, destLocation: '/updates/dkms' }));
    const res = await lib.writeBundle(
      {
        name: 'bench',
        version: '1.0',
        sourceDateEpoch: 1700000000,
        compressionLevel: job.level,
        signingKey: lib.parseSecretKey(readFileSync(job.secretKey, 'utf8')),
        packages: [
          {
            name: 'benchpkg',
            version: '1.0',
            modules: mods.map(({ name, destLocation }) => ({ name, destLocation })),
            source: { dir: job.sourceDir },
            targets: [{ kernelRelease: '6.1.0-0-bench', arch: 'x86_64', vermagic: '6.1.0-0-bench SMP preempt mod_unload modversions ', modules: mods }],
          },
        ],
      },
      job.bundle,
    );
    out = { size: res.size, digest: res.digest };
  } else {
    const b = await lib.openBundle(job.bundle, { trustedKeys: [lib.parsePublicKey(readFileSync(job.publicKey, 'utf8'))] });
    const tOpen = process.hrtime.bigint();
    const pkg = b.package('benchpkg');
    const digests = pkg.targets[0].config.modules.map((m) => m.digest);
    // As the installer stages a package: module blobs copied (on the reader
    // thread) while the source unpacks on this one.
    const modules = b.copyBlobsTo(join(job.dest, 'modules'), digests);
    const entries = await b.extractSource('benchpkg', join(job.dest, 'src'));
    const tSrc = process.hrtime.bigint();
    await modules;
    out = { entries: entries.length, modules: digests.length, openMs: Number(tOpen - t0) / 1e6, sourceMs: Number(tSrc - tOpen) / 1e6 };
  }
  out.innerMs = Number(process.hrtime.bigint() - t0) / 1e6;
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
}

// --------------------------------------------------------------- parent side
const RUNS = Number(opt('--runs', '3'));
const SIZES = opt('--sizes', '176,704').split(',').map(Number);
const LEVEL = Number(opt('--level', '3'));
const KEEP = argv.includes('--keep');
const MODULES = 4;
const MiB = 1 << 20;

for (const tool of ['/usr/bin/time', 'zstd', 'tar']) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    console.error(`bench/bundle.mjs needs ${tool} (apt-get install time zstd tar)`);
    process.exit(1);
  }
}
if (!existsSync(join(repo, 'dist/bundle/index.js'))) {
  console.error('dist/ is missing: run `npx tsc -p .` first');
  process.exit(1);
}
const lib = await import(join(repo, 'dist/bundle/index.js'));
const root = mkdtempSync(join(opt('--tmp', tmpdir()), 'kbundle-bench-bundle-'));
const cleanup = () => {
  if (!KEEP) rmSync(root, { recursive: true, force: true });
};
process.on('exit', cleanup);
if (KEEP) console.error(`keeping ${root}`);
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => process.exit(130));

// ----------------------------------------------------------------- content
// Deterministic for a given machine: files are taken in byte order of their
// paths from /usr/include (text) and /usr/lib/x86_64-linux-gnu (*.so*, ELF).
function listFiles(dir, pred) {
  const out = [];
  const walk = (d) => {
    let names;
    try {
      names = readdirSync(d).sort();
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && st.size > 0 && pred(p)) out.push({ path: p, size: st.size });
    }
  };
  walk(dir);
  return out;
}
const headers = listFiles('/usr/include', () => true);
const libdir = existsSync('/usr/lib/x86_64-linux-gnu') ? '/usr/lib/x86_64-linux-gnu' : '/usr/lib';
const isElf = (p) => {
  const fd = openSync(p, 'r');
  try {
    const b = Buffer.alloc(4);
    return readSync(fd, b, 0, 4, 0) === 4 && b.toString('latin1') === '\x7fELF';
  } finally {
    closeSync(fd);
  }
};
const sharedObjects = listFiles(libdir, (p) => /\.so(\.|$)/.test(p) && isElf(p));
if (headers.length === 0 || sharedObjects.length === 0) {
  console.error('need /usr/include headers and shared objects under /usr/lib to build the benchmark content');
  process.exit(1);
}

/** Source tree of `bytes`: half C headers (repeated in rounds r0/, r1/, ...), half ELF shared objects of ≤ 4 MiB (rounds too). */
function makeSource(dir, bytes) {
  let files = 0;
  const fill = (list, sub, budget) => {
    let done = 0;
    for (let round = 0; done < budget; round++) {
      for (const f of list) {
        if (done >= budget) break;
        const rel = relative(sub === 'include' ? '/usr/include' : libdir, f.path);
        const dst = join(dir, `r${round}`, sub, rel);
        mkdirSync(dirname(dst), { recursive: true });
        copyFileSync(f.path, dst);
        done += f.size;
        files++;
      }
    }
    return done;
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'dkms.conf'), 'PACKAGE_NAME="benchpkg"\nPACKAGE_VERSION="1.0"\nBUILT_MODULE_NAME[0]="bench0"\nDEST_MODULE_LOCATION[0]="/updates/dkms"\nAUTOINSTALL="yes"\n');
  const total = fill(headers, 'include', bytes / 2) + fill(sharedObjects.filter((f) => f.size <= 4 * MiB), 'lib', bytes / 2);
  return { files: files + 1, bytes: total };
}

/** Endless byte stream over the shared objects (in list order, wrapping), from file `start`, in pieces of at most `piece` bytes. */
function* soBytes(start, piece) {
  for (let i = start; ; i++) {
    const b = readFileSync(sharedObjects[i % sharedObjects.length].path);
    for (let o = 0; o < b.length; o += piece) yield b.subarray(o, o + piece);
  }
}

/**
 * A `.ko.zst` of at least `bytes`: zstd -3 frames of 4 MiB each (a valid
 * multi-frame .zst, as a distro kernel's compressed modules are) of the
 * shared objects, starting at a per-module offset in the list. kbundle stores
 * modules as shipped, and they are practically incompressible for the
 * tar | zstd baseline too.
 */
function makeModule(file, bytes, index) {
  const fd = openSync(file, 'w');
  let written = 0;
  const raw = soBytes(Math.floor((index * sharedObjects.length) / MODULES), 4 * MiB);
  try {
    while (written < bytes) {
      const batch = [];
      for (let n = 0; n < 4 * MiB; ) {
        const b = raw.next().value;
        batch.push(b);
        n += b.length;
      }
      const z = spawnSync('zstd', ['-3', '-T1', '-q', '-c'], { input: Buffer.concat(batch).subarray(0, 4 * MiB), maxBuffer: 64 * MiB });
      if (z.status !== 0) throw new Error(`zstd failed: ${z.stderr}`);
      writeSync(fd, z.stdout);
      written += z.stdout.length;
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

// ------------------------------------------------------------------ timing
/** Runs `cmd args` under /usr/bin/time -v; wall ms measured here, peak RSS (KiB) from time's report. */
function measured(cmd, args) {
  const rep = join(root, 'time.txt');
  // Flush the previous step's dirty pages first (not timed), so its writeback does not land in this step.
  spawnSync('sync');
  const t0 = process.hrtime.bigint();
  const p = spawnSync('/usr/bin/time', ['-v', '-o', rep, cmd, ...args], { encoding: 'utf8', maxBuffer: 64 * MiB });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (p.status !== 0) {
    console.error(`${cmd} ${args.join(' ')} failed (${p.status})\n${p.stdout}\n${p.stderr}`);
    process.exit(1);
  }
  const rssKiB = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(readFileSync(rep, 'utf8'))[1]);
  return { ms, rssMB: (rssKiB * 1024) / 1e6, stdout: p.stdout };
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sh = (script, ...args) => ['sh', ['-c', script, 'sh', ...args]];
const duBytes = (dir) => Number(spawnSync('du', ['-sb', dir], { encoding: 'utf8' }).stdout.split('\t')[0]);
/** Relative path → `file <sha256>`, `dir` or `link <target>`, in path order. */
function fileDigests(dir) {
  const out = new Map();
  const walk = (rel) => {
    for (const n of readdirSync(join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const st = lstatSync(join(dir, r));
      if (st.isDirectory()) {
        out.set(r, 'dir');
        walk(r);
      } else if (st.isSymbolicLink()) out.set(r, `link ${readlinkSync(join(dir, r))}`);
      else out.set(r, `file ${createHash('sha256').update(readFileSync(join(dir, r))).digest('hex')}`);
    }
  };
  walk('');
  return out;
}

const keys = lib.generateKeys();
writeFileSync(join(root, 'secret.pem'), keys.secretKeyPem, { mode: 0o600 });
writeFileSync(join(root, 'public.key'), keys.publicKeyText);

const results = {
  date: new Date().toISOString(),
  machine: { cores: availableParallelism(), cpu: cpus()[0]?.model, node: process.version, kernel: spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout.trim() },
  tools: {
    zstd: spawnSync('zstd', ['--version'], { encoding: 'utf8' }).stdout.trim(),
    tar: spawnSync('tar', ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0],
    libzstd: lib.zstdParameters(LEVEL).libzstdVersion,
  },
  level: LEVEL,
  defaultLevel: lib.DEFAULT_ZSTD_LEVEL,
  runs: RUNS,
  cases: [],
};

for (const sizeMiB of SIZES) {
  const caseDir = join(root, `case-${sizeMiB}`);
  const content = join(caseDir, 'content');
  const tg = Date.now();
  const src = makeSource(join(content, 'benchpkg-1.0'), Math.round(sizeMiB * 0.36 * MiB));
  const modDir = join(content, 'modules');
  mkdirSync(modDir, { recursive: true });
  const modules = [];
  let moduleBytes = 0;
  for (let i = 0; i < MODULES; i++) {
    const f = join(modDir, `bench${i}.ko.zst`);
    moduleBytes += makeModule(f, Math.round((sizeMiB * 0.64 * MiB) / MODULES), i);
    modules.push(f);
  }
  const inputBytes = src.bytes + moduleBytes;
  console.error(`case ${sizeMiB} MiB: ${src.files} source files (${(src.bytes / 1e6).toFixed(0)} MB) + ${MODULES} modules (${(moduleBytes / 1e6).toFixed(0)} MB), generated in ${((Date.now() - tg) / 1000).toFixed(1)} s`);

  const bundle = join(caseDir, 'bench.kbundle');
  const tarZst = join(caseDir, 'bench.tar.zst');
  const packJob = join(caseDir, 'pack.json');
  const unpackJob = join(caseDir, 'unpack.json');
  const kbOut = join(caseDir, 'kb-out');
  const tzOut = join(caseDir, 'tz-out');
  writeFileSync(packJob, JSON.stringify({ level: LEVEL, secretKey: join(root, 'secret.pem'), sourceDir: join(content, 'benchpkg-1.0'), modules, bundle }));
  writeFileSync(unpackJob, JSON.stringify({ bundle, publicKey: join(root, 'public.key'), dest: kbOut }));
  const child = (mode, job) => measured(process.execPath, [new URL(import.meta.url).pathname, '--child', mode, job]);

  const runs = { kbPack: [], tzPack: [], tzPackSync: [], kbUnpack: [], tzUnpack: [] };
  // The content was just written, so every run reads it from the page cache;
  // every kbundle step is a fresh process, so there is no JIT to warm up.
  for (let r = 0; r < RUNS; r++) {
    const keep = (k, v) => runs[k].push(v);
    rmSync(bundle, { force: true });
    const kp = child('pack', packJob);
    keep('kbPack', { ms: kp.ms, rssMB: kp.rssMB, ...JSON.parse(kp.stdout) });
    rmSync(tarZst, { force: true });
    keep('tzPack', measured(...sh(`tar -cf - -C "$1" . | zstd -${LEVEL} -T1 -q -c > "$2"`, content, tarZst)));
    rmSync(tarZst, { force: true });
    // Same durability as writeBundle, which fsyncs the bundle before renaming it into place.
    keep('tzPackSync', measured(...sh(`tar -cf - -C "$1" . | zstd -${LEVEL} -T1 -q -c > "$2" && sync "$2"`, content, tarZst)));
    rmSync(kbOut, { recursive: true, force: true });
    mkdirSync(kbOut);
    const ku = child('unpack', unpackJob);
    keep('kbUnpack', { ms: ku.ms, rssMB: ku.rssMB, ...JSON.parse(ku.stdout) });
    rmSync(tzOut, { recursive: true, force: true });
    mkdirSync(tzOut);
    keep('tzUnpack', measured(...sh(`zstd -dc -T1 -q "$1" | tar -xf - -C "$2"`, tarZst, tzOut)));
  }
  // Both unpacks produced the same files: the source tree entry for entry
  // (path, kind, bytes), and the modules by content (kbundle names them by digest).
  const kbTree = fileDigests(join(kbOut, 'src/benchpkg-1.0'));
  const tzTree = fileDigests(join(tzOut, 'benchpkg-1.0'));
  const kbMods = [...fileDigests(join(kbOut, 'modules')).values()].sort();
  const tzMods = [...fileDigests(join(tzOut, 'modules')).values()].sort();
  if (JSON.stringify([...kbTree]) !== JSON.stringify([...tzTree]) || JSON.stringify(kbMods) !== JSON.stringify(tzMods) || kbMods.length !== MODULES) {
    console.error(`case ${sizeMiB} MiB: kbundle's unpack differs from tar's (${kbOut} vs ${tzOut})`);
    process.exit(1);
  }
  const kbBytes = duBytes(kbOut);
  const tzBytes = duBytes(tzOut);
  const c = {
    sizeMiB,
    sourceFiles: src.files,
    sourceBytes: src.bytes,
    moduleBytes,
    inputBytes,
    bundleBytes: statSync(bundle).size,
    tarZstBytes: statSync(tarZst).size,
    unpackedBytes: { kbundle: kbBytes, tarZstd: tzBytes },
    runs,
  };
  const med = (k, f = 'ms') => median(runs[k].map((x) => x[f]));
  for (const k of Object.keys(runs)) c[k] = { ms: med(k), rssMB: Math.max(...runs[k].map((x) => x.rssMB)), mbps: inputBytes / 1e6 / (med(k) / 1000) };
  results.cases.push(c);
  if (!KEEP) rmSync(caseDir, { recursive: true, force: true });
}

// ----------------------------------------------------------------- report
const f0 = (x) => x.toFixed(0);
const f1 = (x) => x.toFixed(1);
const lines = [];
lines.push(
  `${results.machine.cores} cores (${results.machine.cpu}), Node ${process.version}, ${results.tools.zstd.replace(/^\*+ | \*+$/g, '')}, ${results.tools.tar}; zstd level ${LEVEL} both sides (kbundle default ${lib.DEFAULT_ZSTD_LEVEL}); ${RUNS} runs, medians, warm page cache`,
);
lines.push('');
lines.push('| input | bundle | step | kbundle s | kbundle MB/s | tar+zstd s | tar+zstd MB/s | ratio (kbundle/tar+zstd throughput) | target | kbundle peak RSS | tar+zstd peak RSS |');
lines.push('|---|---|---|---|---|---|---|---|---|---|---|');
for (const c of results.cases) {
  const row = (step, kb, tz) => {
    const ratio = tz.ms / kb.ms;
    lines.push(
      `| ${f0(c.inputBytes / 1e6)} MB | ${f0(c.bundleBytes / 1e6)} MB | ${step} | ${(kb.ms / 1000).toFixed(2)} | ${f0(kb.mbps)} | ${(tz.ms / 1000).toFixed(2)} | ${f0(tz.mbps)} | ${ratio.toFixed(2)}× | ≥ 0.8× ${ratio >= 0.8 ? 'met' : 'MISSED'} | ${f1(kb.rssMB)} MB | ${f1(tz.rssMB)} MB |`,
    );
    return ratio;
  };
  c.ratios = {
    pack: row('pack', c.kbPack, c.tzPack),
    packVsSync: row('pack (tar+zstd then fsync, as writeBundle)', c.kbPack, c.tzPackSync),
    unpack: row('unpack (verify + extract)', c.kbUnpack, c.tzUnpack),
  };
}
const big = results.cases.reduce((a, b) => (b.bundleBytes > a.bundleBytes ? b : a));
const small = results.cases.reduce((a, b) => (b.bundleBytes < a.bundleBytes ? b : a));
// Per-byte rate between the two sizes: the extra input over the extra time,
// so costs paid once per run (Node start-up, module loading, the worker
// thread, signing; ~0.2-0.3 s, a third of tar | zstd's whole run on the small
// case) drop out and what is left is throughput proper.
if (big !== small) {
  const dIn = (big.inputBytes - small.inputBytes) / 1e6;
  const marginal = (k) => dIn / ((big[k].ms - small[k].ms) / 1000);
  results.marginal = {};
  lines.push('');
  lines.push(`Per-byte throughput between the two sizes (${f0(dIn)} MB more input; fixed per-run costs cancel):`);
  lines.push('');
  lines.push('| step | kbundle MB/s | tar+zstd MB/s | ratio | target |');
  lines.push('|---|---|---|---|---|');
  for (const [step, kb, tz] of [
    ['pack', 'kbPack', 'tzPack'],
    ['pack (tar+zstd then fsync)', 'kbPack', 'tzPackSync'],
    ['unpack', 'kbUnpack', 'tzUnpack'],
  ]) {
    const r = marginal(kb) / marginal(tz);
    results.marginal[step] = { kbundleMBps: marginal(kb), tarZstdMBps: marginal(tz), ratio: r };
    lines.push(`| ${step} | ${f0(marginal(kb))} | ${f0(marginal(tz))} | ${r.toFixed(2)}× | ≥ 0.8× ${r >= 0.8 ? 'met' : 'MISSED'} |`);
  }
}
const peak = (c) => Math.max(c.kbPack.rssMB, c.kbUnpack.rssMB);
results.rss = {
  largestBundleBytes: big.bundleBytes,
  largestBundleOver500MB: big.bundleBytes >= 500e6,
  peakMB: peak(big),
  under150MB: peak(big) < 150,
  smallPeakMB: peak(small),
  growthMB: peak(big) - peak(small),
};
lines.push('');
lines.push(
  `Peak RSS, kbundle: pack ${results.cases.map((c) => `${f1(c.kbPack.rssMB)} MB @ ${f0(c.bundleBytes / 1e6)} MB`).join(', ')}; unpack ${results.cases.map((c) => `${f1(c.kbUnpack.rssMB)} MB @ ${f0(c.bundleBytes / 1e6)} MB`).join(', ')}. ` +
    `Target < 150 MB for a ≥ 500 MB bundle: ${!results.rss.largestBundleOver500MB ? 'not measured (largest bundle under 500 MB)' : results.rss.under150MB ? 'met' : 'MISSED'}; growth ${f1(results.rss.growthMB)} MB for ${f1(big.bundleBytes / small.bundleBytes)}× the bundle.`,
);
for (const c of results.cases) {
  const u = c.runs.kbUnpack;
  lines.push(
    `kbundle unpack @ ${f0(c.bundleBytes / 1e6)} MB, medians: openBundle (scan + hash every blob + signature) ${(median(u.map((x) => x.openMs)) / 1000).toFixed(2)} s, ` +
      `extractSource (${c.sourceFiles} files, ${f0(c.sourceBytes / 1e6)} MB) ${(median(u.map((x) => x.sourceMs)) / 1000).toFixed(2)} s, ` +
      `then waiting for copyBlobsTo (${MODULES} modules, ${f0(c.moduleBytes / 1e6)} MB, on the reader thread alongside extractSource) ${(median(u.map((x) => x.innerMs - x.openMs - x.sourceMs)) / 1000).toFixed(2)} s.`,
  );
}
console.log(lines.join('\n'));
mkdirSync(join(repo, 'bench/results'), { recursive: true });
writeFileSync(join(repo, 'bench/results/bundle.json'), JSON.stringify(results, null, 2) + '\n');
