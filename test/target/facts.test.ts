import { describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { readTargetFacts, runningKernel } from '../../src/target/facts.js';
import { signatureRequired } from '../../src/target/policy.js';
import { KbundleError } from '../../src/util/errors.js';
import { kernelWithModules, makeTargetTree, setSymversCrc } from '../select/fixtures.js';

const ARCH = 'x86_64';
const K = kernelWithModules();
const REAL_SYMVERS = readFileSync(`/lib/modules/${K}/build/Module.symvers`, 'utf8');

/** A fake sysfs, to tell apart "read /sys" from "ignored /sys". */
function fakeSys(sigEnforce: string, lockdown: string): string {
  const d = mkdtempSync(join(tmpdir(), 'kbsel-sys-'));
  mkdirSync(join(d, 'module/module/parameters'), { recursive: true });
  mkdirSync(join(d, 'kernel/security'), { recursive: true });
  writeFileSync(join(d, 'module/module/parameters/sig_enforce'), sigEnforce);
  writeFileSync(join(d, 'kernel/security/lockdown'), lockdown);
  return d;
}

describe('readTargetFacts on the real system', () => {
  test('reads vermagic, symvers, modules and headers of an installed kernel', async () => {
    const f = await readTargetFacts({ kernel: K, arch: ARCH });
    expect(f.vermagic).toMatch(new RegExp(`^${K.replace(/[.+]/g, '\\$&')} .*modversions $`));
    expect(f.vermagicSource).toMatch(new RegExp(`^/lib/modules/${K.replace(/[.+]/g, '\\$&')}/kernel/.*\\.ko`));
    expect(f.symversSource).toMatch(/Module\.symvers$/);
    expect(f.symvers!.size).toBe(REAL_SYMVERS.trim().split('\n').length);
    const line = REAL_SYMVERS.split('\n').find((l) => l.includes('\tusb_register_driver\t'))!.split('\t');
    expect(f.symvers!.get('usb_register_driver')).toEqual({ crc: parseInt(line[0]!, 16), module: 'drivers/usb/core/usbcore', exportType: 'EXPORT_SYMBOL_GPL', namespace: '' });
    const dep = readFileSync(`/lib/modules/${K}/modules.dep`, 'utf8').trim().split('\n').length;
    expect(f.installedModules.size).toBe(dep);
    expect(f.installedModules.has('usbcore')).toBe(true);
    expect(f.installedModules.has('usb_common')).toBe(true); // usb-common.ko, normalised
    expect(f.headersPresent).toBe(true);
    expect(f.compilerPresent).toBe(true);
    expect(f.symversDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  test('on / the live sysfs decides the signature policy', async () => {
    const f = await readTargetFacts({ kernel: K, arch: ARCH, sysDir: fakeSys('Y\n', 'none [integrity] confidentiality\n') });
    expect(f.signaturePolicy.enforced).toBe(true);
    expect(f.signaturePolicy.lockdown).toBe('integrity');
    expect(signatureRequired(f.signaturePolicy)).toBe(true);
    const off = await readTargetFacts({ kernel: K, arch: ARCH, sysDir: fakeSys('N\n', '[none] integrity confidentiality\n') });
    expect(off.signaturePolicy).toMatchObject({ enforced: false, lockdown: 'none' });
    expect(signatureRequired(off.signaturePolicy)).toBe(false);
  });

  test('runningKernel: uname on /, an error asking for -k elsewhere', () => {
    expect(runningKernel('/')).toBe(release());
    const root = mkdtempSync(join(tmpdir(), 'kbsel-img-'));
    expect(() => runningKernel(root)).toThrow(KbundleError);
    expect(() => runningKernel(root)).toThrow(/-k/);
  });
});

describe('readTargetFacts on an image root', () => {
  test('never reads the host sysfs: policy unknown unless the image says so', async () => {
    const sys = fakeSys('Y\n', 'none [confidentiality]\n');
    const { root } = makeTargetTree(K, K);
    const f = await readTargetFacts({ kernel: K, arch: ARCH, root, sysDir: sys });
    expect(f.signaturePolicy.enforced).toBeNull();
    expect(f.signaturePolicy.lockdown).toBeNull();
    expect(f.signaturePolicy.evidence.join(' ')).not.toContain(sys);
    expect(f.compilerPresent).toBe(false); // the host's gcc is not the image's

    // The image's own kernel config forcing signatures is authoritative.
    mkdirSync(join(root, 'boot'));
    writeFileSync(join(root, 'boot', `config-${K}`), 'CONFIG_MODULE_SIG=y\nCONFIG_MODULE_SIG_FORCE=y\nCONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY=y\n');
    const forced = await readTargetFacts({ kernel: K, arch: ARCH, root, sysDir: sys });
    expect(forced.signaturePolicy).toMatchObject({ enforced: true, lockdown: 'integrity' });

    // A real Debian config (signing on, not forced) leaves it unknown; the image's cmdline can enforce.
    writeFileSync(join(root, 'boot', `config-${K}`), readFileSync(`/lib/modules/${K}/build/.config`));
    expect((await readTargetFacts({ kernel: K, arch: ARCH, root })).signaturePolicy.enforced).toBeNull();
    mkdirSync(join(root, 'etc/kernel'), { recursive: true });
    writeFileSync(join(root, 'etc/kernel/cmdline'), 'root=/dev/vda1 ro module.sig_enforce=1\n');
    expect((await readTargetFacts({ kernel: K, arch: ARCH, root })).signaturePolicy.enforced).toBe(true);
  });

  test('symvers: <root>/boot/symvers-<k>.gz wins over the build tree', async () => {
    const { root } = makeTargetTree(K, K, { editSymvers: (s) => setSymversCrc(s, '_printk', 0x12345678) });
    mkdirSync(join(root, 'boot'));
    writeFileSync(join(root, 'boot', `symvers-${K}.gz`), gzipSync(REAL_SYMVERS));
    const f = await readTargetFacts({ kernel: K, arch: ARCH, root });
    expect(f.symversSource).toBe(join(root, 'boot', `symvers-${K}.gz`));
    const real = parseInt(REAL_SYMVERS.split('\n').find((l) => l.includes('\t_printk\t'))!.split('\t')[0]!, 16);
    expect(f.symvers!.get('_printk')!.crc).toBe(real);
    const fromBuild = await readTargetFacts({ kernel: K, arch: ARCH, root: makeTargetTree(K, K, { editSymvers: (s) => setSymversCrc(s, '_printk', 0x12345678) }).root });
    expect(fromBuild.symvers!.get('_printk')!.crc).toBe(0x12345678);
  });

  test('symvers: <installTree>/<k>/symvers.xz (Fedora layout)', async () => {
    const { root, moduleDir } = makeTargetTree(K, K, { editSymvers: () => '' });
    writeFileSync(join(moduleDir, 'symvers.xz'), execFileSync('xz', ['-c'], { input: REAL_SYMVERS }));
    const f = await readTargetFacts({ kernel: K, arch: ARCH, root });
    expect(f.symversSource).toBe(join(moduleDir, 'symvers.xz'));
    expect(f.symvers!.size).toBe(REAL_SYMVERS.trim().split('\n').length);
  });

  test('an absolute build symlink resolves inside the image, not on the host', async () => {
    const root = mkdtempSync(join(tmpdir(), 'kbsel-img-'));
    const hdrs = `/kbsel-headers-not-on-host/${K}`;
    mkdirSync(join(root, hdrs, 'include'), { recursive: true });
    writeFileSync(join(root, hdrs, 'Module.symvers'), REAL_SYMVERS);
    mkdirSync(join(root, 'lib/modules', K), { recursive: true });
    symlinkSync(hdrs, join(root, 'lib/modules', K, 'build'));
    const f = await readTargetFacts({ kernel: K, arch: ARCH, root });
    expect(f.headersPresent).toBe(true);
    expect(f.symversSource).toBe(join(root, hdrs, 'Module.symvers'));
    expect(f.vermagic).toBeNull(); // no in-tree modules in this image
    expect(f.installedModules.size).toBe(0);
  });

  test('installed modules come from modules.dep when present, else from the files', async () => {
    const { root, moduleDir } = makeTargetTree(K, K);
    const walked = await readTargetFacts({ kernel: K, arch: ARCH, root });
    expect([...walked.installedModules].sort()).toEqual(['dummy', 'usb_common', 'usbcore']);
    writeFileSync(join(moduleDir, 'modules.dep'), 'kernel/drivers/net/dummy.ko.xz:\nupdates/dkms/some-thing.ko.zst: kernel/drivers/net/dummy.ko.xz\n');
    writeFileSync(join(moduleDir, 'modules.builtin'), 'kernel/drivers/usb/core/usbcore.ko\n');
    const dep = await readTargetFacts({ kernel: K, arch: ARCH, root });
    expect([...dep.installedModules].sort()).toEqual(['dummy', 'some_thing']);
    expect([...dep.builtinModules]).toEqual(['usbcore']);
  });
});
