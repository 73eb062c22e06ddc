// What `kbundle conf` prints: fixed JSON shape, readable text.
import { describe, expect, it } from 'vitest';
import { confToJson, confToText } from '../../src/conf/format.js';
import { loadConf } from '../../src/conf/load.js';
import { destLocationForDistro, parseOsRelease, readOsRelease } from '../../src/conf/evaluate.js';
import { twoKernels } from '../helpers/kernels.js';
import { ctxFor, tempDir, writeConf } from './conf-helpers.js';

const [K1] = twoKernels();

describe('confToJson / confToText', () => {
  it('has exactly the documented keys, in order, with .ko paths', async () => {
    const p = writeConf(tempDir(), `PACKAGE_NAME=fmt\nPACKAGE_VERSION=3
BUILT_MODULE_NAME[0]=one; BUILT_MODULE_LOCATION[0]=src; DEST_MODULE_LOCATION[0]=/extra
BUILT_MODULE_NAME[1]=two; DEST_MODULE_NAME[1]=zwei; DEST_MODULE_LOCATION[1]=/updates; STRIP[1]=no
PRE_BUILD=prep.sh\nAUTOINSTALL=yes\nBUILD_EXCLUSIVE_ARCH='^arm'\n`);
    const c = await loadConf(ctxFor(p, K1, { dkmsTree: '/d' }));
    const j = confToJson(c);
    expect(Object.keys(j)).toEqual(['name', 'version', 'autoinstall', 'make', 'clean', 'preBuild', 'modules', 'excluded', 'excludeReasons']);
    expect(Object.keys(j.modules[0]!)).toEqual(['built', 'destName', 'destLocation', 'strip']);
    expect(j.modules).toEqual([
      { built: 'src/one.ko', destName: 'one', destLocation: '/extra', strip: true },
      { built: 'two.ko', destName: 'zwei', destLocation: '/updates', strip: false },
    ]);
    expect([j.preBuild, j.autoinstall, j.excluded]).toEqual(['prep.sh', true, true]);
    const t = confToText(c);
    expect(t).toContain('fmt/3\n');
    expect(t).toContain(`  make:        make -C /lib/modules/${K1}/build M=/d/fmt/3/build\n`);
    expect(t).toContain('    two.ko -> /updates as zwei (not stripped)\n');
    expect(t).toContain('  excluded for this kernel:\n    BUILD_EXCLUSIVE_ARCH "^arm" does not match x86_64\n');
  });
});

describe('DEST_MODULE_LOCATION per distribution', () => {
  it.each([
    ['ID=debian\n', '/updates/dkms'],
    ['ID=ubuntu\nID_LIKE=debian\n', '/updates/dkms'],
    ['ID=linuxmint\nID_LIKE="ubuntu debian"\n', '/updates/dkms'],
    ['ID=arch\n', '/updates/dkms'],
    ['ID="rocky"\nID_LIKE="rhel centos fedora"\n', '/extra'],
    ['ID=fedora\n', '/extra'],
    ['ID="opensuse-tumbleweed"\nID_LIKE="opensuse suse"\n', '/updates'],
    ['ID=alpine\n', '/kernel/extra'],
    ['ID=gentoo\n', '/kernel/extra'],
  ])('%j -> %s', (text, want) => {
    expect(destLocationForDistro('/kernel/extra', parseOsRelease(text))).toBe(want);
  });

  it('reads this machine\'s os-release and honours ADDON_MODULES_DIR', () => {
    const os = readOsRelease();
    expect(os?.id).toBe('debian');
    expect(destLocationForDistro('/extra', os!, 'addon')).toBe('/addon');
    expect(readOsRelease('/nonexistent/os-release')).toBeNull();
  });
});
