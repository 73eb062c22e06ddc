// Pure parts of cross-arch builds: arch names, header arch, kernel/arch pairing, apt package plan, ELF machine in selection.
import { describe, expect, it } from 'vitest';
import { archFromConfigText, canonicalArch, crossMakeVars, pairKernels } from '../../src/arch/index.js';
import { machineMismatch } from '../../src/arch/machine-check.js';
import { binaryColumns } from '../../src/arch/ls-columns.js';
import { dependsNames, firstDepends, headerPackages, rewriteMakefile } from '../../src/headers/plan.js';
import { explain, selectBinary, type Candidate, type SelectionTarget } from '../../src/select/index.js';
import { KbundleError } from '../../src/util/errors.js';

const catchErr = (fn: () => unknown): KbundleError => {
  try {
    fn();
  } catch (e) {
    return e as KbundleError;
  }
  throw new Error('did not throw');
};

describe('arch names and header arch', () => {
  it('spellings', () => {
    expect(canonicalArch('arm64')).toBe('aarch64');
    expect(canonicalArch('amd64')).toBe('x86_64');
    expect(canonicalArch('aarch64')).toBe('aarch64');
  });
  it('make variables: none for the host arch, ARCH and CROSS_COMPILE for another', () => {
    expect(crossMakeVars('x86_64', 'x86_64')).toEqual({});
    expect(crossMakeVars('arm64', 'x86_64')).toEqual({ ARCH: 'arm64', CROSS_COMPILE: 'aarch64-linux-gnu-' });
    expect(crossMakeVars('x86_64', 'aarch64')).toEqual({ ARCH: 'x86', CROSS_COMPILE: 'x86_64-linux-gnu-' });
    expect(catchErr(() => crossMakeVars('vax', 'x86_64')).exitCode).toBe(82);
  });
  it('.config and autoconf.h', () => {
    expect(archFromConfigText('CONFIG_X86=y\nCONFIG_X86_64=y\n')).toBe('x86_64');
    expect(archFromConfigText('# CONFIG_X86_64 is not set\nCONFIG_ARM64=y\n')).toBe('aarch64');
    expect(archFromConfigText('#define CONFIG_ARM64 1\n')).toBe('aarch64');
    expect(archFromConfigText('# CONFIG_ARM64 is not set\n')).toBeNull();
  });
});

describe('pairing kernels with arches', () => {
  const k = (release: string, arch: string | null) => ({ release, headers: `/h/${release}`, arch });
  it('each kernel gets its own headers\' arch, in the manifest\'s spelling', () => {
    expect(pairKernels([k('6.1.0-55-amd64', 'x86_64'), k('6.1.0-55-arm64', 'aarch64')], ['x86_64', 'arm64'], 'x86_64')).toEqual([
      { kernel: '6.1.0-55-amd64', arch: 'x86_64' },
      { kernel: '6.1.0-55-arm64', arch: 'arm64' },
    ]);
  });
  it('headers that do not say are the host\'s', () => {
    expect(pairKernels([k('6.1.0-55-amd64', null)], ['x86_64'], 'x86_64')).toEqual([{ kernel: '6.1.0-55-amd64', arch: 'x86_64' }]);
  });
  it('a kernel for an unlisted arch, and a listed arch without kernels, are refused (80)', () => {
    const stray = catchErr(() => pairKernels([k('6.1.0-55-arm64', 'aarch64')], ['x86_64', 'aarch64'], 'x86_64', 'm.yaml'));
    expect(stray.exitCode).toBe(80);
    expect(stray.message).toContain('m.yaml: no kernel in "kernels" has headers for arch x86_64');
    const unlisted = catchErr(() => pairKernels([k('6.1.0-55-arm64', 'aarch64'), k('6.1.0-55-amd64', 'x86_64')], ['x86_64'], 'x86_64'));
    expect(unlisted.exitCode).toBe(80);
    expect(unlisted.message).toContain('6.1.0-55-arm64 (aarch64, headers /h/6.1.0-55-arm64)');
  });
});

describe('headers fetch plan', () => {
  const show = 'Package: linux-headers-6.1.0-55-arm64\nVersion: 6.1.192-1\nDepends: linux-headers-6.1.0-55-common (= 6.1.192-1), linux-kbuild-6.1 (>= 6.1.192-1), gcc-12\n\nPackage: linux-headers-6.1.0-55-arm64\nDepends: other\n';
  it('flavour for the target arch, -common, linux-kbuild for the host', () => {
    expect(dependsNames(firstDepends(show))).toEqual(['linux-headers-6.1.0-55-common', 'linux-kbuild-6.1', 'gcc-12']);
    expect(headerPackages('6.1.0-55-arm64', 'arm64', 'amd64', firstDepends(show))).toEqual([
      { spec: 'linux-headers-6.1.0-55-arm64:arm64', name: 'linux-headers-6.1.0-55-arm64', role: 'flavour' },
      { spec: 'linux-headers-6.1.0-55-common', name: 'linux-headers-6.1.0-55-common', role: 'common' },
      { spec: 'linux-kbuild-6.1:amd64', name: 'linux-kbuild-6.1', role: 'kbuild' },
    ]);
    // 6.12 on bookworm: the image is an alternative dependency, kbuild named by the full version.
    const d612 = 'linux-base (>= 4.12~), linux-headers-6.12.117+deb12-common (= 6.12.117-1~deb12u1), linux-image-6.12.117+deb12-arm64 (= 6.12.117-1~deb12u1) | linux-image-6.12.117+deb12-arm64-unsigned (= 6.12.117-1~deb12u1), linux-kbuild-6.12.117+deb12, gcc-12';
    const p = headerPackages('6.12.117+deb12-arm64', 'arm64', 'amd64', d612);
    expect(Array.isArray(p) && p.map((x) => x.spec)).toEqual(['linux-headers-6.12.117+deb12-arm64:arm64', 'linux-headers-6.12.117+deb12-common', 'linux-kbuild-6.12.117+deb12:amd64']);
    expect(headerPackages('x', 'arm64', 'amd64', 'gcc-12')).toMatch(/does not depend on/);
  });
  it('the flavour Makefile names the unpacked -common', () => {
    expect(rewriteMakefile('include /usr/src/linux-headers-6.1.0-55-common/Makefile\n', '/c/t/')).toBe('include /c/t/usr/src/linux-headers-6.1.0-55-common/Makefile\n');
  });
});

describe('ELF machine', () => {
  it('writer check: a module of another machine than its target arch', () => {
    expect(machineMismatch('x86_64', 62)).toBeNull();
    expect(machineMismatch('aarch64', 183)).toBeNull();
    expect(machineMismatch('x86_64', 183)).toBe('is an ELF AArch64 binary (e_machine 183); arch x86_64 needs X86-64 (e_machine 62)');
    expect(machineMismatch('x86_64', undefined)).toBeNull();
  });
  it('bundle ls columns', () => {
    expect(binaryColumns({ vermagic: 'v ', modules: [{ machine: 183 }, { machine: 183 }] as never })).toEqual({ elf: 'AArch64', machines: [183], vermagic: 'v ' });
    expect(binaryColumns({ vermagic: 'v ', modules: [{}] as never }).elf).toBe('-');
  });

  const vermagic = '6.1.0-55-amd64 SMP preempt mod_unload modversions ';
  const target: SelectionTarget = {
    kernel: '6.1.0-55-amd64',
    arch: 'x86_64',
    vermagic,
    symvers: new Map([['module_layout', { crc: 0x1234, module: 'vmlinux' }]]),
    installedModules: new Set(),
    headersPresent: false,
    compilerPresent: false,
  };
  const cand = (machine: number | undefined): Candidate => ({
    id: 'sha256:aa',
    module: 'hello',
    kernel: '6.1.0-55-amd64',
    arch: 'x86_64',
    vermagic,
    versions: [{ symbol: 'module_layout', crc: 0x1234 }],
    depends: [],
    ...(machine === undefined ? {} : { machine }),
  });
  it('an x86-64 binary for this very kernel is exact', () => {
    expect(selectBinary([cand(62)], target, { sourceAvailable: false }).level).toBe('exact');
    expect(selectBinary([cand(undefined)], target, { sourceAvailable: false }).level).toBe('exact');
  });
  it('the same build labelled x86_64 but AArch64 inside is never picked, and the plan says why', () => {
    const s = selectBinary([cand(183)], target, { sourceAvailable: false });
    expect(s.level).toBe('none');
    expect(s.considered[0]!.notExact).toContainEqual({ kind: 'machine', module: 'hello', candidate: 'AArch64', target: 'x86_64, X86-64' });
    expect(explain(s).join('\n')).toContain('hello: ELF machine AArch64, the target kernel (x86_64, X86-64) loads only its own machine');
  });
});
