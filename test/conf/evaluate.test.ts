// A dkms.conf evaluated for the machine's two real kernels: selection,
// exclusion, defaults and validation as a user sees them.
import { describe, expect, it } from 'vitest';
import { evaluateConf } from '../../src/conf/evaluate.js';
import { loadConf } from '../../src/conf/load.js';
import type { RawConf } from '../../src/conf/types.js';
import { compareVer, ver } from '../../src/conf/version.js';
import { KbundleError } from '../../src/util/errors.js';
import { twoKernels } from '../helpers/kernels.js';
import { configInBoth, configOnlyIn, ctxFor, tempDir, writeConf } from './conf-helpers.js';

const [K1, K2] = twoKernels();
const dir = tempDir();
const HEAD = 'PACKAGE_NAME=foo\nPACKAGE_VERSION=1.0\nBUILT_MODULE_NAME[0]=foo\nDEST_MODULE_LOCATION[0]=/extra\n';
const load = (text: string, k: string, extra = {}) => loadConf(ctxFor(writeConf(dir, text), k, extra));
const both = (text: string, extra = {}) => {
  const p = writeConf(dir, text);
  return Promise.all([loadConf(ctxFor(p, K1, extra)), loadConf(ctxFor(p, K2, extra))]);
};

async function rejection(p: Promise<unknown>): Promise<KbundleError> {
  const e = await p.then(() => null, (x: unknown) => x);
  expect(e).toBeInstanceOf(KbundleError);
  return e as KbundleError;
}

describe('shell logic evaluated per kernel', () => {
  it('chooses modules from the kernel .config the conf sources', async () => {
    const only1 = configOnlyIn(K1, K2)[0]!;
    const [a, b] = await both(`PACKAGE_NAME=logic
PACKAGE_VERSION=1
. "$kernel_source_dir/.config"
i=0
BUILT_MODULE_NAME[i]=core; DEST_MODULE_LOCATION[i]=/extra; i=$((i+1))
if [ -n "\${${only1}}" ]; then
  BUILT_MODULE_NAME[i]=extra_feature; DEST_MODULE_LOCATION[i]=/extra; i=$((i+1))
fi
case "$kernelver" in
  6.1.*) MAKE="make OLD=1" ;;
  *) MAKE="make NEW=$(echo $kernelver | cut -d. -f1-2)" ;;
esac
`);
    expect(a.modules.map((m) => m.builtName)).toEqual(['core', 'extra_feature']);
    expect(b.modules.map((m) => m.builtName)).toEqual(['core']);
    expect(a.make).toBe(K1.startsWith('6.1.') ? 'make OLD=1' : `make NEW=${K1.split('.').slice(0, 2).join('.')}`);
    expect(b.make).toBe(`make NEW=${K2.split('.').slice(0, 2).join('.')}`);
  });
});

describe('MAKE / MAKE_MATCH', () => {
  it('picks the last MAKE whose MAKE_MATCH matches the kernel', async () => {
    const s1 = K1.split('.').slice(0, 2).join('\\.');
    const s2 = K2.split('.').slice(0, 2).join('\\.');
    const [a, b] = await both(`${HEAD}MAKE[0]="make default"
MAKE[1]="make first"; MAKE_MATCH[1]='^${s1}\\.'
MAKE[2]="make second"; MAKE_MATCH[2]='^${s2}\\.'
MAKE[3]="make any-six"; MAKE_MATCH[3]='^6\\.'
MAKE[4]="make only-k2"; MAKE_MATCH[4]='^${s2}\\.'
`);
    expect(a.make).toBe('make any-six');
    expect(b.make).toBe('make only-k2');
  });

  it('uses MAKE[0] without MAKE_MATCH[0] and DKMS default commands otherwise', async () => {
    const c = await load(`${HEAD}MAKE[0]="make zero"; MAKE_MATCH[0]='^never$'\n`, K1, { module: 'foo', moduleVersion: '1.0', dkmsTree: '/d' });
    expect(c.make).toBe(`make -C /lib/modules/${K1}/build M=/d/foo/1.0/build`);
    expect(c.clean).toBe(`make -C /lib/modules/${K1}/build M=/d/foo/1.0/build clean`);
    const d = await load(`${HEAD}MAKE="make zero"\nCLEAN=true\n`, K1);
    expect([d.make, d.clean]).toEqual(['make zero', 'true']);
  });
});

describe('PATCH / PATCH_MATCH', () => {
  it('keeps the patches whose PATCH_MATCH matches, in order', async () => {
    const s1 = K1.split('.').slice(0, 2).join('\\.');
    const [a, b] = await both(`${HEAD}PATCH[0]=all.patch
PATCH[1]=k1.patch; PATCH_MATCH[1]='^${s1}\\.'
PATCH[2]=last.patch
`);
    expect(a.patches).toEqual(['all.patch', 'k1.patch', 'last.patch']);
    expect(b.patches).toEqual(['all.patch', 'last.patch']);
  });

  it('rejects a patch name with a .. component (exit 5)', async () => {
    const e = await rejection(load(`${HEAD}PATCH[0]=../../etc/evil.patch\n`, K1));
    expect(e.exitCode).toBe(5);
    expect(e.message).toBe("Patch ../../etc/evil.patch as specified in dkms.conf contains '..' path component.");
  });
});

describe('BUILD_EXCLUSIVE_*', () => {
  it('KERNEL: a regex matched against the kernel version', async () => {
    const re = `^${K1.replace(/[.+]/g, '\\$&')}$`;
    const [a, b] = await both(`${HEAD}BUILD_EXCLUSIVE_KERNEL='${re}'\n`);
    expect([a.excluded, a.excludeReasons]).toEqual([false, []]);
    expect(b.excludeReasons).toEqual([`BUILD_EXCLUSIVE_KERNEL "${re}" does not match ${K2}`]);
  });

  it('KERNEL: an invalid regex excludes, as bash `! k =~ bad` is true', async () => {
    const c = await load(`${HEAD}BUILD_EXCLUSIVE_KERNEL='('\n`, K1);
    expect(c.excludeReasons).toEqual(['BUILD_EXCLUSIVE_KERNEL "(" is not a valid regular expression']);
  });

  it('ARCH: a regex matched against the arch', async () => {
    const ok = await load(`${HEAD}BUILD_EXCLUSIVE_ARCH='^x86_64$'\n`, K1);
    const no = await load(`${HEAD}BUILD_EXCLUSIVE_ARCH='^(arm|aarch64)'\n`, K1);
    expect(ok.excluded).toBe(false);
    expect(no.excludeReasons).toEqual(['BUILD_EXCLUSIVE_ARCH "^(arm|aarch64)" does not match x86_64']);
  });

  it('CONFIG: every CONFIG_X must be y/m and every !CONFIG_X must not be', async () => {
    const only1 = configOnlyIn(K1, K2)[0]!;
    const common = configInBoth(K1, K2);
    const [a, b] = await both(`${HEAD}BUILD_EXCLUSIVE_CONFIG="${common} ${only1}"\n`);
    expect(a.excluded).toBe(false);
    expect(b.excludeReasons).toEqual([`BUILD_EXCLUSIVE_CONFIG "${only1}": ${only1} is not y or m in ${K2}`]);
    const [c, d] = await both(`${HEAD}BUILD_EXCLUSIVE_CONFIG="!${only1}"\n`);
    expect(c.excludeReasons).toEqual([expect.stringMatching(new RegExp(`^BUILD_EXCLUSIVE_CONFIG "!${only1}": ${only1}=[ym] in `))]);
    expect(d.excluded).toBe(false);
  });

  it('CONFIG: skipped (with a warning) when the kernel has no config file', async () => {
    const c = await load(`${HEAD}BUILD_EXCLUSIVE_CONFIG="CONFIG_SURELY_NOT_THERE"\n`, K1, { kernelConfig: '/nonexistent/.config' });
    expect(c.excluded).toBe(false);
    expect(c.warnings.join('\n')).toContain('BUILD_EXCLUSIVE_CONFIG "CONFIG_SURELY_NOT_THERE" not checked');
  });

  it('KERNEL_MIN / KERNEL_MAX: compared like DKMS VER()', async () => {
    const [older, newer] = compareVer(K1, K2) < 0 ? [K1, K2] : [K2, K1];
    const p = writeConf(dir, `${HEAD}BUILD_EXCLUSIVE_KERNEL_MIN="${newer}"\n`);
    const [o, n] = await Promise.all([loadConf(ctxFor(p, older)), loadConf(ctxFor(p, newer))]);
    expect(o.excludeReasons).toEqual([`BUILD_EXCLUSIVE_KERNEL_MIN "${newer}": ${older} is older`]);
    expect(n.excluded).toBe(false);
    const q = writeConf(dir, `${HEAD}BUILD_EXCLUSIVE_KERNEL_MAX="${older}"\n`);
    const [o2, n2] = await Promise.all([loadConf(ctxFor(q, older)), loadConf(ctxFor(q, newer))]);
    expect(o2.excluded).toBe(false);
    expect(n2.excludeReasons).toEqual([`BUILD_EXCLUSIVE_KERNEL_MAX "${older}": ${newer} is newer`]);
  });

  it('VER() pads digit runs, so MAX "6.1" already excludes 6.1.0-56', () => {
    expect(ver('2.6.9-1cvs200409091247')).toBe('002.006.009-001cvs200409091247');
    expect(compareVer('6.1.0-56-amd64', '6.1')).toBeGreaterThan(0);
    expect(compareVer('6.1.0-56-amd64', '6.12')).toBeLessThan(0);
    expect(compareVer('6.12.117+deb12-amd64', '6.12.117')).toBeGreaterThan(0);
  });

  it('a conf that sets build_exclude itself is excluded', async () => {
    const c = await load(`${HEAD}build_exclude=yes\n`, K1);
    expect(c.excludeReasons).toEqual(['build_exclude is set to "yes" by the conf']);
  });
});

describe('modules and defaults', () => {
  it('fills DKMS defaults: built name, trailing slash, dest name, strip', async () => {
    const one = await load('PACKAGE_NAME=solo\nPACKAGE_VERSION=2\nBUILT_MODULE_LOCATION=src\nDEST_MODULE_LOCATION=/kernel/extra\n', K1);
    expect(one.modules).toEqual([{ builtName: 'solo', builtLocation: 'src/', destName: 'solo', destLocation: '/kernel/extra', strip: true }]);
  });

  it('numbers sparse module arrays by their highest index', async () => {
    const e = await rejection(load('PACKAGE_NAME=s\nPACKAGE_VERSION=1\nBUILT_MODULE_NAME[0]=a\nDEST_MODULE_LOCATION[0]=/extra\nBUILT_MODULE_NAME[2]=c\nDEST_MODULE_LOCATION[2]=/extra\n', K1));
    expect(e.exitCode).toBe(8);
    expect(e.message).toContain("No 'BUILT_MODULE_NAME' directive specified for record #1.");
  });

  it('inherits STRIP[0] for records without their own STRIP', async () => {
    const c = await load(`PACKAGE_NAME=st\nPACKAGE_VERSION=1
BUILT_MODULE_NAME[0]=a; DEST_MODULE_LOCATION[0]=/extra; STRIP[0]=no
BUILT_MODULE_NAME[1]=b; DEST_MODULE_LOCATION[1]=/extra
BUILT_MODULE_NAME[2]=c; DEST_MODULE_LOCATION[2]=/extra; STRIP[2]=Yes
`, K1);
    expect(c.modules.map((m) => m.strip)).toEqual([false, false, true]);
  });

  it.each([
    ['PACKAGE_VERSION=1\nBUILT_MODULE_NAME=a\nDEST_MODULE_LOCATION=/extra\n', "No 'PACKAGE_NAME' directive specified."],
    ['PACKAGE_NAME=a\nBUILT_MODULE_NAME=a\nDEST_MODULE_LOCATION=/extra\n', "No 'PACKAGE_VERSION' directive specified."],
    ['PACKAGE_NAME=a\nPACKAGE_VERSION=1\nBUILT_MODULE_NAME=a.ko\nDEST_MODULE_LOCATION=/extra\n', "'BUILT_MODULE_NAME' directive ends in '.o' or '.ko' in record #0."],
    ['PACKAGE_NAME=a\nPACKAGE_VERSION=1\nBUILT_MODULE_NAME=a\nDEST_MODULE_NAME=b.o\nDEST_MODULE_LOCATION=/extra\n', "'DEST_MODULE_NAME' directive ends in '.o' or '.ko' in record #0."],
    ['PACKAGE_NAME=a\nPACKAGE_VERSION=1\nBUILT_MODULE_NAME=a\n', "No 'DEST_MODULE_LOCATION' directive specified for record #0."],
    ['PACKAGE_NAME=a\nPACKAGE_VERSION=1\nBUILT_MODULE_NAME=a\nDEST_MODULE_LOCATION=/opt\n', "Directive 'DEST_MODULE_LOCATION' does not begin with '/kernel', '/updates', or '/extra' in record #0."],
    ['PACKAGE_NAME=a\nPACKAGE_VERSION=1\n', "No 'DEST_MODULE_LOCATION' directive specified."],
    ['PACKAGE_NAME=a\nPACKAGE_VERSION=1\nBUILT_MODULE_NAME=a\nDEST_MODULE_LOCATION=/extra\nAUTOINSTALL=maybe\n', "Unsupported AUTOINSTALL value 'maybe'."],
  ])('rejects a bad conf with exit 8 (%#)', async (text, msg) => {
    const p = writeConf(dir, text);
    const e = await rejection(loadConf(ctxFor(p, K1)));
    expect(e.exitCode).toBe(8);
    expect(e.message.split('\n')).toContain(`${p}: ${msg}`);
  });

  it('reads AUTOINSTALL strictly: yes/no in any case', async () => {
    expect((await load(`${HEAD}AUTOINSTALL=YES\n`, K1)).autoinstall).toBe(true);
    expect((await load(`${HEAD}AUTOINSTALL=no\n`, K1)).autoinstall).toBe(false);
    expect((await load(HEAD, K1)).autoinstall).toBe(false);
  });

  it('records scripts, dependencies, OBSOLETE_BY and deprecated directives with warnings', async () => {
    const p = writeConf(dir, `${HEAD}PRE_BUILD="configure --k=$kernelver"\nPOST_INSTALL=post.sh\nBUILD_DEPENDS=(base other)\nOBSOLETE_BY=6.5\nREMAKE_INITRD=yes\nMODULES_CONF[0]="options foo x=1"\nNO_WEAK_MODULES=yes\n`);
    const c = await loadConf(ctxFor(p, K1));
    expect(c.preBuild).toBe(`configure --k=${K1}`);
    expect([c.postInstall, c.postBuild]).toEqual(['post.sh', null]);
    expect(c.buildDepends).toEqual(['base', 'other']);
    expect(c.obsoleteBy).toBe('6.5');
    expect([c.remakeInitrd, c.modulesConf, c.noWeakModules]).toEqual([true, ['options foo x=1'], true]);
    expect(c.warnings).toEqual([`Deprecated feature: REMAKE_INITRD (${p})`, `Deprecated feature: MODULES_CONF (${p})`]);
  });

  it('warns about duplicate module names that newer DKMS rejects', async () => {
    const c = await load('PACKAGE_NAME=d\nPACKAGE_VERSION=1\nBUILT_MODULE_NAME=(a a)\nDEST_MODULE_LOCATION=(/extra /extra)\n', K1);
    expect(c.modules).toHaveLength(2);
    expect(c.warnings).toEqual([
      "dkms.conf: duplicate module 'a' in 'BUILT_MODULE_NAME[1]' (DKMS 3.1.7+ rejects this).",
      "dkms.conf: duplicate module 'a' in 'DEST_MODULE_NAME[1]' (DKMS 3.1.7+ rejects this).",
    ]);
  });
});

describe('evaluateConf without bash verdicts', () => {
  it('falls back to an ERE emulation for hand-built RawConf', () => {
    const raw: RawConf = new Map([
      ['PACKAGE_NAME', new Map([[0, 'h']])],
      ['PACKAGE_VERSION', new Map([[0, '1']])],
      ['DEST_MODULE_LOCATION', new Map([[0, '/extra']])],
      ['MAKE', new Map([[0, 'make a'], [1, 'make b']])],
      ['MAKE_MATCH', new Map([[1, '^[[:digit:]]+\\.[[:digit:]]+\\.']])],
    ]);
    const c = evaluateConf(raw, ctxFor('/x/dkms.conf', K1), null);
    expect(c.make).toBe('make b');
  });
});
