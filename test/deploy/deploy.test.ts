// bundle install / plan / extract / autoinstall with real bundles, real kernels' headers, real depmod/modinfo.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { BIN, kbundle, REPO, sh } from '../helpers/scratch.js';
import { buildBundle, K55, K56, K612, snapshot, targetRoot, trust } from './helpers.js';

const hasDkms = sh('sh', ['-c', 'command -v dkms']).code === 0;

function installRecord(dkmsTree: string, kernel: string) {
  return JSON.parse(readFileSync(join(dkmsTree, 'hello/1.0', kernel, 'x86_64/.kbundle-install.json'), 'utf8'));
}

/** The target symvers with one CRC changed, as <installtree>/<k>/symvers.gz (read before build/Module.symvers). */
function symversWithChangedCrc(installTree: string, kernel: string, symbol: string): string {
  const lines = readFileSync(`/lib/modules/${kernel}/build/Module.symvers`, 'utf8').split('\n');
  let old = '';
  const edited = lines.map((l) => {
    const f = l.split('\t');
    if (f[1] !== symbol) return l;
    old = f[0]!;
    f[0] = f[0] === '0xdeadbeef' ? '0xfeedface' : '0xdeadbeef';
    return f.join('\t');
  });
  if (!old) throw new Error(`${symbol} not in symvers`);
  writeFileSync(join(installTree, kernel, 'symvers.gz'), gzipSync(edited.join('\n')));
  return old;
}

describe('bundle install: selection steps', () => {
  test('exact: a build for the target kernel is installed, compressed like the kernel, recorded, depmod run, status installed', () => {
    const b = buildBundle([K55, K56, K612]);
    const s = targetRoot(K612);
    const r = kbundle(['bundle', 'install', b, '-k', K612, ...s.treeArgs, ...trust]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`hello/1.0: exact (binary built for ${K612})`);
    const installed = join(s.installTree, K612, 'updates/dkms/hello.ko.xz');
    expect(existsSync(installed)).toBe(true);
    expect(sh('modinfo', ['-F', 'vermagic', installed]).stdout).toMatch(new RegExp(`^${K612.replace(/[+.]/g, '\\$&')} SMP`));
    expect(readFileSync(join(s.installTree, K612, 'modules.dep'), 'utf8')).toContain('updates/dkms/hello.ko.xz:');
    const rec = installRecord(s.dkmsTree, K612);
    expect(rec.selection).toBe('exact');
    expect(rec.bundleDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(existsSync(join(s.dkmsTree, '.kbundle-bundles', `${rec.bundleDigest.slice(7)}.kbundle`))).toBe(true);
    expect(kbundle(['status', ...s.treeArgs]).stdout).toBe(`hello/1.0, ${K612}, x86_64: installed\n`);
    if (hasDkms) expect(sh('dkms', ['status', '--dkmstree', s.dkmsTree, '--sourcetree', s.sourceTree, '--installtree', s.installTree]).stdout).toContain(`hello/1.0, ${K612}, x86_64: installed`);
    // Second run: same bundle, nothing to do.
    const again = kbundle(['bundle', 'install', b, '-k', K612, ...s.treeArgs, ...trust]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('already installed');
  });

  test('threaded readers (KBUNDLE_WORKER_MIN_BYTES=0: scan, source and module copies on worker threads): same install, and the process ends by itself', () => {
    const b = buildBundle([K612]);
    const s = targetRoot(K612);
    // bin/kbundle sets process.exitCode and returns: a thread left running would keep it alive (timeout: 124).
    const r = sh('timeout', ['120', process.execPath, BIN, 'bundle', 'install', b, '-k', K612, ...s.treeArgs, ...trust], { KBUNDLE_WORKER_MIN_BYTES: '0', KBUNDLE_CACHE_DIR: join(s.root, 'cache') });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`hello/1.0: exact (binary built for ${K612})`);
    expect(existsSync(join(s.installTree, K612, 'updates/dkms/hello.ko.xz'))).toBe(true);
    expect(readFileSync(join(s.sourceTree, 'hello-1.0/dkms.conf'), 'utf8')).toContain('PACKAGE_NAME');
  });

  test('compatible: a build for -55 is chosen on -56 (same vermagic tail, every CRC equal); status and record say so', () => {
    const b = buildBundle([K55]);
    const s = targetRoot(K56);
    const plan = kbundle(['bundle', 'plan', b, '-k', K56, ...s.treeArgs, ...trust, '--json']);
    expect(plan.code, plan.stderr).toBe(0);
    const p = JSON.parse(plan.stdout);
    expect([p.packages[0].level, p.packages[0].fromKernel]).toEqual(['compatible', K55]);
    const r = kbundle(['bundle', 'install', b, '-k', K56, ...s.treeArgs, ...trust]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`hello/1.0: compatible (binary built for ${K55})`);
    expect(installRecord(s.dkmsTree, K56).selection).toBe('compatible');
    // The installed file is the -55 build (uncompressed: this target has no compressed modules).
    expect(sh('modinfo', ['-F', 'vermagic', join(s.installTree, K56, 'updates/dkms/hello.ko')]).stdout).toMatch(/^6\.1\.0-55-amd64 /);
    expect(kbundle(['status', ...s.treeArgs]).stdout).toBe(`hello/1.0, ${K56}, x86_64: installed\n`);
  });

  test('one CRC differs: not compatible; with headers the source build wins, without them a clear failure and nothing written', () => {
    const b = buildBundle([K55]);
    const s = targetRoot(K56);
    const old = symversWithChangedCrc(s.installTree, K56, '_printk');
    const plan = kbundle(['bundle', 'plan', b, '-k', K56, ...s.treeArgs, ...trust]);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain('hello/1.0: source (build from the included source)');
    expect(plan.stdout).toContain(`hello: symbol _printk CRC ${old} (module) != 0xdeadbeef (kernel)`);

    const r = kbundle(['bundle', 'install', b, '-k', K56, ...s.treeArgs, ...trust]);
    expect(r.code, r.stderr).toBe(0);
    expect(installRecord(s.dkmsTree, K56).selection).toBe('source');
    expect(sh('modinfo', ['-F', 'vermagic', join(s.installTree, K56, 'updates/dkms/hello.ko')]).stdout).toMatch(/^6\.1\.0-56-amd64 /);
    expect(kbundle(['status', ...s.treeArgs]).stdout).toBe(`hello/1.0, ${K56}, x86_64: installed\n`);

    const h = targetRoot(K56);
    symversWithChangedCrc(h.installTree, K56, '_printk');
    // symvers still comes from symvers.gz; the headers are gone.
    unlinkSync(join(h.installTree, K56, 'build'));
    const before = snapshot(h.root);
    const f = kbundle(['bundle', 'install', b, '-k', K56, ...h.treeArgs, ...trust]);
    expect(f.code).toBe(41);
    expect(f.stderr).toContain(`hello/1.0: no build in the bundle fits kernel ${K56} (x86_64), and it cannot be built from source here.`);
    expect(f.stderr).toContain('building from source is impossible (no kernel headers');
    expect(f.stderr).toContain(`nearest: ${K55}/x86_64`);
    expect(f.stderr).toMatch(/hello: symbol _printk CRC 0x[0-9a-f]{8} \(module\) != 0xdeadbeef \(kernel\)/);
    expect(snapshot(h.root)).toEqual(before);
  }, 120_000);

  test('anti-rollback: an older bundle of the same module is refused unless --allow-downgrade', () => {
    const newer = buildBundle([K612], { epoch: 1700000500 });
    const older = buildBundle([K612], { epoch: 1700000000 });
    const s = targetRoot(K612);
    expect(kbundle(['bundle', 'install', newer, '-k', K612, ...s.treeArgs, ...trust]).code).toBe(0);
    const newerDigest = installRecord(s.dkmsTree, K612).bundleDigest;
    const before = snapshot(s.root);
    const r = kbundle(['bundle', 'install', older, '-k', K612, ...s.treeArgs, ...trust]);
    expect(r.code).toBe(42);
    expect(r.stderr).toContain('hello: the bundle holds 1.0 built 2023-11-14T22:13:20Z, older than the installed 1.0 built 2023-11-14T22:21:40Z');
    expect(snapshot(s.root)).toEqual(before);
    const ok = kbundle(['bundle', 'install', older, '-k', K612, ...s.treeArgs, ...trust, '--allow-downgrade']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(installRecord(s.dkmsTree, K612).bundleDigest).not.toBe(newerDigest);
  }, 120_000);

  test('no trusted key: refused (33) unless --insecure, which says what it skips', () => {
    const b = buildBundle([K612]);
    const s = targetRoot(K612);
    const before = snapshot(s.root);
    const r = kbundle(['bundle', 'install', b, '-k', K612, ...s.treeArgs]);
    expect(r.code).toBe(33);
    expect(r.stderr).toContain('no trusted bundle key');
    expect(snapshot(s.root)).toEqual(before);
    const i = kbundle(['bundle', 'install', b, '-k', K612, ...s.treeArgs, '--insecure']);
    expect(i.code, i.stderr).toBe(0);
    expect(i.stderr).toContain('WARNING: --insecure: the bundle signature is NOT checked');
  });

  test('--require-trusted-signer refuses when the kernel may enforce signatures and does not (known to) trust the signer', () => {
    const b = buildBundle([K612]);
    const s = targetRoot(K612);
    const before = snapshot(s.root);
    const r = kbundle(['bundle', 'install', b, '-k', K612, ...s.treeArgs, ...trust, '--require-trusted-signer']);
    expect(r.code).toBe(43);
    expect(r.stderr).toContain('the modules\' signer "kbundle example module signing key (DO NOT TRUST)"');
    expect(r.stderr).toContain('mokutil --import');
    expect(snapshot(s.root)).toEqual(before);
  });

  test('--root: trees under the root, -k required (the host kernel is never assumed)', () => {
    const b = buildBundle([K612]);
    const s = targetRoot(K612);
    const r = kbundle(['bundle', 'plan', b, '--root', s.root, ...trust]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('pass -k <kernel release>');
    const p = kbundle(['bundle', 'install', b, '--root', s.root, '-k', K612, ...trust]);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toContain(`hello/1.0: exact (binary built for ${K612})`);
    expect(existsSync(join(s.root, 'var/lib/dkms/hello', `kernel-${K612}-x86_64`))).toBe(true);
  });

  test('plan touches nothing', () => {
    const b = buildBundle([K55, K612]);
    const s = targetRoot(K612);
    const before = snapshot(s.root);
    const r = kbundle(['bundle', 'plan', b, '-k', K612, ...s.treeArgs, ...trust, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).packages[0].level).toBe('exact');
    expect(snapshot(s.root)).toEqual(before);
  });
});

describe('new kernels, extract, read-only media, conflicts', () => {
  test('autoinstall for a newly installed kernel re-selects from the stored bundle, offline', () => {
    const b = join(targetRoot(K612).root, 'copy.kbundle');
    cpSync(buildBundle([K55, K612]), b);
    const s = targetRoot(K612);
    expect(kbundle(['bundle', 'install', b, '-k', K612, ...s.treeArgs, ...trust]).code).toBe(0);
    // A new kernel appears (-56): headers and an in-tree module; the bundle file itself is gone.
    const n = targetRoot(K56);
    cpSync(join(n.installTree, K56), join(s.installTree, K56), { recursive: true, verbatimSymlinks: true });
    rmSync(b);
    const r = kbundle(['autoinstall', '-k', K56, ...s.treeArgs, '--etcdir', s.etcDir]);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toContain(`Installed from a stored bundle: hello/1.0 ${K56} (x86_64)`);
    expect(installRecord(s.dkmsTree, K56).selection).toBe('compatible');
    expect(kbundle(['status', ...s.treeArgs]).stdout).toBe(`hello/1.0, ${K56}, x86_64: installed\nhello/1.0, ${K612}, x86_64: installed\n`);
  }, 120_000);

  test('extract writes just the files one kernel needs', () => {
    const b = buildBundle([K55, K612]);
    const s = targetRoot(K612);
    const out = join(s.root, 'dud');
    const r = kbundle(['bundle', 'extract', b, '-k', K612, '-o', out, ...s.treeArgs, ...trust]);
    expect(r.code, r.stderr).toBe(0);
    const files = sh('find', [out, '-type', 'f']).stdout.trim().split('\n').sort();
    expect(files).toEqual([join(out, 'kbundle-extract.json'), join(out, 'lib/modules', K612, 'updates/dkms/hello.ko.xz')].sort());
    expect(sh('modinfo', ['-F', 'vermagic', files.find((f) => f.endsWith('.xz'))!]).stdout).toMatch(/^6\.12\.117/);
    // A kernel this machine does not have: only a build for that very release qualifies.
    const far = kbundle(['bundle', 'extract', b, '-k', K55, '-o', join(s.root, 'dud55'), '--compress', 'none', ...s.treeArgs, ...trust]);
    expect(far.code, far.stderr).toBe(0);
    expect(far.stdout.trim()).toBe(join(s.root, 'dud55/lib/modules', K55, 'updates/dkms/hello.ko'));
  });

  test('installs from a read-only medium', () => {
    const b = buildBundle([K612]);
    const s = targetRoot(K612);
    const media = join(s.root, 'media');
    mkdirSync(media);
    cpSync(b, join(media, 'hello.kbundle'));
    const cmd = `mount --bind ${media} ${media} && mount -o remount,ro,bind ${media} && touch ${media}/probe 2>/dev/null && exit 99; ${process.execPath} ${REPO}/bin/kbundle bundle install ${media}/hello.kbundle -k ${K612} ${s.treeArgs.join(' ')} --trust ${trust[1]}`;
    const r = spawnSync('unshare', ['-m', 'sh', '-c', cmd], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(kbundle(['status', ...s.treeArgs]).stdout).toBe(`hello/1.0, ${K612}, x86_64: installed\n`);
  });

  test('a bundle for another module name claiming the same files is refused (44), nothing written', () => {
    const s = targetRoot(K612);
    expect(kbundle(['bundle', 'install', buildBundle([K612]), '-k', K612, ...s.treeArgs, ...trust]).code).toBe(0);
    const src = join(s.root, 'other-1.0');
    cpSync(join(REPO, 'bundles/hello-1.0'), src, { recursive: true });
    writeFileSync(join(src, 'dkms.conf'), readFileSync(join(src, 'dkms.conf'), 'utf8').replace('PACKAGE_NAME="hello"', 'PACKAGE_NAME="other"'));
    const other = buildBundle([K612], { source: src });
    const before = snapshot(s.root);
    const r = kbundle(['bundle', 'install', other, '-k', K612, ...s.treeArgs, ...trust]);
    expect(r.code).toBe(44);
    expect(r.stderr).toContain(`other: ${join(s.installTree, K612, 'updates/dkms/hello.ko.xz')} is already installed by module hello`);
    expect(snapshot(s.root)).toEqual(before);
  });
});
