// A real cross build on this amd64 host: arm64 headers fetched with `kbundle headers fetch`,
// built through the bundle builder and the DKMS-style lifecycle, checked with readelf and modinfo,
// and refused by the installer for an x86_64 target.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE_PUB, makeProject, unpackBundle } from '../helpers/bundles.js';
import { armSibling, fetchArmHeaders, TEST_HEADERS_ROOT, type Fetched } from '../helpers/cross.js';
import { addSource, kbundle, makeScratch, sh } from '../helpers/scratch.js';

const { amd64, arm64 } = armSibling();
const MODULE = 'application/vnd.kbundle.module.v1';
const EPOCH = { SOURCE_DATE_EPOCH: '1700000000' };

describe('cross-arch: arm64 modules on an amd64 host', () => {
  let fetched: Fetched;
  let proj: { dir: string; manifest: string };
  let bundle: string;

  beforeAll(() => {
    [fetched] = fetchArmHeaders([arm64]) as [Fetched];
    proj = makeProject(['bundles/hello-1.0'], [amd64], `arches: [x86_64, aarch64]\n`);
    // makeProject writes `arches: [x86_64]`; the manifest here lists both and names the arm64 headers.
    const text = readFileSync(proj.manifest, 'utf8')
      .replace('arches: [x86_64]\n', '')
      .replace(`kernels:\n  - ${amd64}\n`, `kernels:\n  - ${amd64}\n  - release: ${arm64}\n    headers: ${fetched.headers}\n`);
    writeFileSync(proj.manifest, text);
    bundle = join(proj.dir, 'cross.kbundle');
    const r = kbundle(['bundle', 'build', proj.manifest, '-o', bundle, '-q'], EPOCH);
    if (r.code !== 0) throw new Error(r.stderr);
  });

  it('headers fetch: an arm64 tree with the host\'s kbuild tools, reused on the next call', () => {
    expect(fetched.arch).toBe('aarch64');
    expect(fetched.packages.some((p) => p.startsWith(`linux-headers-${arm64}_`) && p.endsWith('_arm64.deb'))).toBe(true);
    expect(fetched.packages.some((p) => /^linux-kbuild-.*_amd64\.deb$/.test(p))).toBe(true);
    // modpost runs on this host: it is an x86-64 program.
    expect(sh('readelf', ['-h', join(fetched.headers, 'scripts/mod/modpost')]).stdout).toMatch(/Machine:\s+Advanced Micro Devices X86-64/);
    expect(readFileSync(join(fetched.headers, '.config'), 'utf8')).toMatch(/^CONFIG_ARM64=y$/m);
    const again = fetchArmHeaders([arm64]);
    expect(again[0]!.reused).toBe(true);
    expect(again[0]!.headers).toBe(fetched.headers);
  });

  it('headers fetch of a release the archive does not serve: 83, nothing left behind', () => {
    const r = kbundle(['headers', 'fetch', '6.1.0-999-arm64', '--arch', 'arm64', '--root', TEST_HEADERS_ROOT]);
    expect(r.code).toBe(83);
    expect(r.stderr).toContain('the archive has no linux-headers-6.1.0-999-arm64 for arm64');
    expect(existsSync(join(TEST_HEADERS_ROOT, '6.1.0-999-arm64-aarch64'))).toBe(false);
  });

  it('bundle check: no cross compiler on PATH is exit 81 with the package to install', () => {
    // A PATH with every tool of /usr/bin but the aarch64 cross tools (/bin is /usr/bin with usrmerge).
    const bin = join(proj.dir, 'bin-without-cross');
    mkdirSync(bin);
    for (const n of readdirSync('/usr/bin')) if (!n.startsWith('aarch64-linux-gnu-')) symlinkSync(join('/usr/bin', n), join(bin, n));
    const r = kbundle(['bundle', 'check', proj.manifest], { PATH: bin });
    expect(r.code, r.stderr).toBe(81);
    expect(r.stderr).toContain('apt-get install gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu');
  });

  it('bundle check pairs each kernel with its headers\' arch', () => {
    const r = kbundle(['bundle', 'check', proj.manifest, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const builds = (JSON.parse(r.stdout).builds as Array<{ kernel: string; arch: string }>).map((b) => [b.kernel, b.arch]);
    expect(builds.sort()).toEqual([[amd64, 'x86_64'], [arm64, 'aarch64']].sort());
  });

  it('the bundle holds an AArch64 module whose vermagic names the arm64 kernel; ls shows ELF and VERMAGIC', () => {
    const ls = JSON.parse(kbundle(['bundle', 'ls', bundle, '--json', '--key', BUNDLE_PUB]).stdout);
    const t = (ls.targets as Array<{ kernel: string; arch: string; elf: string; vermagic: string }>).find((x) => x.kernel === arm64)!;
    expect(t.arch).toBe('aarch64');
    expect(t.elf).toBe('AArch64');
    expect(t.vermagic).toMatch(new RegExp(`^${arm64} SMP .*aarch64\\s*$`));
    const table = kbundle(['bundle', 'ls', bundle, '--key', BUNDLE_PUB]).stdout;
    expect(table).toMatch(/KERNEL\s+ARCH\s+MODULES\s+ELF\s+SIZE\s+MODULE SIGNER\s+VERMAGIC/);
    expect(table).toMatch(new RegExp(`${arm64}\\s+aarch64\\s+hello.ko\\s+AArch64\\s`));

    const { blobs } = unpackBundle(bundle);
    const machines = blobs
      .filter((b) => b.mediaType === MODULE)
      .map((b) => {
        // modinfo takes a path without .ko for a module name.
        copyFileSync(b.path, `${b.path}.ko`);
        return { elf: sh('readelf', ['-h', b.path]).stdout, vermagic: sh('modinfo', ['-F', 'vermagic', `${b.path}.ko`]).stdout.trim() };
      });
    const arm = machines.find((m) => /Machine:\s+AArch64/.test(m.elf));
    expect(arm, JSON.stringify(machines)).toBeDefined();
    expect(arm!.vermagic).toMatch(new RegExp(`^${arm64} SMP .*aarch64$`));
    const x86 = machines.find((m) => /Machine:\s+Advanced Micro Devices X86-64/.test(m.elf));
    expect(x86!.vermagic.startsWith(`${amd64} `)).toBe(true);
  });

  it('the writer refuses an AArch64 module labelled x86_64 (40), writing nothing', async () => {
    const { blobs } = unpackBundle(bundle);
    const arm = blobs.filter((b) => b.mediaType === MODULE).find((b) => /Machine:\s+AArch64/.test(sh('readelf', ['-h', b.path]).stdout))!;
    const { writeBundle } = await import('../../src/bundle/write/writer.js');
    const { loadSecretKey } = await import('../../src/sign/minisign.js');
    const out = join(proj.dir, 'mislabelled.kbundle');
    const err = await writeBundle(
      {
        name: 'hello',
        version: '1.0',
        sourceDateEpoch: 1700000000,
        signingKey: await loadSecretKey(join(proj.dir, 'keys/example-bundle.key')),
        packages: [{
          name: 'hello',
          version: '1.0',
          modules: [{ name: 'hello', destLocation: '/extra' }],
          source: { dir: join(proj.dir, 'hello-1.0') },
          targets: [{ kernelRelease: amd64, arch: 'x86_64', vermagic: `${amd64} SMP`, modules: [{ name: 'hello', file: arm.path, installName: 'hello.ko', destLocation: '/extra', machine: 183 }] }],
        }],
      },
      out,
    ).catch((e: { exitCode: number; message: string }) => e);
    expect((err as { exitCode: number }).exitCode).toBe(40);
    expect((err as { message: string }).message).toContain('module hello is an ELF AArch64 binary (e_machine 183); arch x86_64 needs X86-64 (e_machine 62)');
    expect(existsSync(out)).toBe(false);
  });

  it('the installer refuses the arm64 build for an x86_64 target and says why (41)', () => {
    // An arm64-only bundle, and an x86_64 image root with no headers (so no source build either).
    const armOnly = makeProject(['bundles/hello-1.0'], [], '');
    writeFileSync(
      armOnly.manifest,
      readFileSync(armOnly.manifest, 'utf8').replace('kernels:\n\n', `kernels:\n  - release: ${arm64}\n    headers: ${fetched.headers}\n`).replace('arches: [x86_64]', 'arches: [aarch64]'),
    );
    const file = join(armOnly.dir, 'arm.kbundle');
    const b = kbundle(['bundle', 'build', armOnly.manifest, '-o', file, '-q'], EPOCH);
    expect(b.code, b.stderr).toBe(0);
    const root = join(armOnly.dir, 'image');
    mkdirSync(join(root, 'lib/modules', amd64), { recursive: true });
    const r = kbundle(['bundle', 'install', file, '--root', root, '-k', amd64, '-a', 'x86_64', '--trust', BUNDLE_PUB]);
    expect(r.code, r.stdout + r.stderr).toBe(41);
    const out = r.stdout + r.stderr;
    expect(out).toContain(`built for arch aarch64, target is x86_64`);
    expect(out).toContain('hello: ELF machine AArch64, the target kernel (x86_64, X86-64) loads only its own machine');
    expect(existsSync(join(root, 'lib/modules', amd64, 'updates'))).toBe(false);
    expect(existsSync(join(root, 'var/lib/dkms/hello'))).toBe(false);
  });

  it('a manifest whose kernels and arches do not pair is refused before building (80)', () => {
    const bad = makeProject(['bundles/hello-1.0'], [amd64]);
    writeFileSync(bad.manifest, readFileSync(bad.manifest, 'utf8').replace('arches: [x86_64]', 'arches: [x86_64, aarch64]'));
    const r = kbundle(['bundle', 'build', bad.manifest, '-q']);
    expect(r.code).toBe(80);
    expect(r.stderr).toContain('no kernel in "kernels" has headers for arch aarch64');
  });

  it('the DKMS way: build/install -k <arm64 kernel> -a aarch64 use <kernel>/aarch64 and an AArch64 module', () => {
    const s = makeScratch([]);
    addSource(s, 'bundles/hello-1.0');
    mkdirSync(join(s.installTree, arm64), { recursive: true });
    sh('ln', ['-s', fetched.headers, join(s.installTree, arm64, 'build')]);
    expect(kbundle(['add', 'hello/1.0', ...s.treeArgs]).code).toBe(0);
    const r = kbundle(['build', 'hello/1.0', '-k', arm64, '-a', 'aarch64', '--no-cache', ...s.treeArgs]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const ko = join(s.dkmsTree, 'hello/1.0', arm64, 'aarch64/module/hello.ko');
    expect(sh('readelf', ['-h', ko]).stdout).toMatch(/Machine:\s+AArch64/);
    expect(kbundle(['status', ...s.treeArgs]).stdout).toContain(`hello/1.0, ${arm64}, aarch64: built`);
    const i = kbundle(['install', 'hello/1.0', '-k', arm64, '-a', 'aarch64', ...s.treeArgs]);
    expect(i.code, i.stdout + i.stderr).toBe(0);
    expect(kbundle(['status', ...s.treeArgs]).stdout).toContain(`hello/1.0, ${arm64}, aarch64: installed`);
    expect(existsSync(join(s.dkmsTree, 'hello', `kernel-${arm64}-aarch64`))).toBe(true);
    // depmod read the AArch64 module on this x86-64 host.
    expect(readFileSync(join(s.installTree, arm64, 'modules.dep'), 'utf8')).toMatch(/hello\.ko[^:]*:/);
  });
});
