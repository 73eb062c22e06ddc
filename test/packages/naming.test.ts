// The pure parts of the package builders: names, versions and the generated
// metadata, checked without running any tool.
import { describe, expect, it } from 'vitest';
import { debArch, debianUpstreamVersion, packageName, rfc2822, rpmDate } from '../../src/packages/common.js';
import { debianSource } from '../../src/packages/debian-source.js';
import type { PackageInput } from '../../src/packages/input.js';
import { kernelModulesEvr, kmpFlavor, kmpPlan, kmodRpmPlan, rpmFileName, rpmVersion } from '../../src/packages/rpm.js';

const input = (over: Partial<PackageInput> = {}): PackageInput => ({
  module: 'my_drv',
  version: '2.1',
  sourceDir: '/nonexistent',
  kernels: [{ kernel: '5.14.21-150500.55.7-default', arch: 'x86_64', modules: [] }],
  epoch: 1700000000,
  origin: 'test',
  cleanup: async () => undefined,
  ...over,
});
const meta = { packager: 'P <p@example.org>', release: '1', compression: async () => '' as const };

describe('names and versions', () => {
  it('package names follow policy 5.6.1 (underscore to hyphen, lowercase); bad ones are refused with exit 65', () => {
    expect(packageName('My_Drv')).toBe('my-drv');
    expect(() => packageName('a b')).toThrow(expect.objectContaining({ exitCode: 65 }));
    expect(() => debianUpstreamVersion('v1.0')).toThrow(/starts with a digit/);
    expect(() => rpmVersion('1.0-2')).toThrow(/no hyphen/);
    expect(debArch('x86_64')).toBe('amd64');
    expect(debArch('aarch64')).toBe('arm64');
  });

  it('dates: RFC 5322 for debian/changelog, %changelog style for RPM, both UTC', () => {
    expect(rfc2822(1700000000)).toBe('Tue, 14 Nov 2023 22:13:20 +0000');
    expect(rpmDate(1700000000)).toBe('Tue Nov 14 2023');
  });

  it('KMP flavour and version as SUSE names them; kernel-modules EVR keeps one hyphen', () => {
    expect(kmpFlavor('5.14.21-150500.55.7-default')).toEqual({ flavor: 'default', base: '5.14.21-150500.55.7' });
    expect(kmpFlavor('6.1.0-55-amd64')).toEqual({ flavor: 'amd64', base: '6.1.0-55' });
    expect(kernelModulesEvr('4.18.0-513.5.1.el8_9.x86_64')).toBe('4.18.0-513.5.1.el8_9.x86_64');
    expect(kernelModulesEvr('6.1.0-55-amd64')).toBe('6.1.0-55_amd64');
    const k = input().kernels[0]!;
    expect(rpmFileName(kmpPlan(input(), k, meta, []))).toBe('my-drv-kmp-default-2.1_k5.14.21_150500.55.7-1.x86_64.rpm');
    expect(rpmFileName(kmodRpmPlan(input(), k, meta, []))).toBe('kmod-my-drv-2.1-1.5.14.21_150500.55.7_default.x86_64.rpm');
  });
});

describe('generated metadata', () => {
  it('the -dkms source package: quilt format, no root needed, dkms scripts with the module name as dkms knows it', () => {
    const s = debianSource(input(), { maintainer: 'P <p@example.org>', revision: '1' });
    expect(s.source).toBe('my-drv');
    expect(s.binary).toBe('my-drv-dkms');
    expect(s.version).toBe('2.1-1');
    expect(s.files.get('source/format')!.text).toBe('3.0 (quilt)\n');
    expect(s.files.get('control')!.text).toMatch(/^Rules-Requires-Root: no$/m);
    expect(s.files.get('changelog')!.text).toBe('my-drv (2.1-1) unstable; urgency=medium\n\n  * Packaged by kbundle mkdeb.\n\n -- P <p@example.org>  Tue, 14 Nov 2023 22:13:20 +0000\n');
    expect(s.files.get('my-drv-dkms.postinst')!.text).toContain("DKMS_NAME='my_drv'");
    expect(s.files.get('my-drv-dkms.postinst')!.mode).toBe(0o755);
    expect(s.files.get('rules')!.text).toContain('dpkg-deb --root-owner-group');
  });

  it('kmod and KMP specs: provides, file locations, scripts', () => {
    const k = { ...input().kernels[0]!, modules: [] };
    const kmod = kmodRpmPlan(input(), k, meta, ['my_drv.ko.xz']).spec;
    expect(kmod).toContain('Provides: kernel-modules >= 5.14.21-150500.55.7_default');
    expect(kmod).toContain('/lib/modules/5.14.21-150500.55.7-default/extra/my-drv');
    expect(kmod).toContain('%global __os_install_post %{nil}');
    const kmp = kmpPlan(input(), k, meta, ['my_drv.ko.xz']).spec;
    expect(kmp).toContain('/lib/modules/5.14.21-150500.55.7-default/updates/my_drv.ko.xz');
    expect(kmp).toContain('Provides: multiversion(kernel)');
    expect(kmp).toContain('weak-modules2 --add-kmp %{name}-%{version}-%{release}');
  });
});
