// Confs from real Debian *-dkms packages, evaluated for both kernels, and
// cross-checked against Debian's own dkms 3.0.10 read_conf.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { confToJson } from '../../src/conf/format.js';
import { loadConf } from '../../src/conf/load.js';
import { destLocationForDistro } from '../../src/conf/evaluate.js';
import type { EvaluatedConf } from '../../src/conf/types.js';
import { debianDkmsSource } from '../helpers/debian-dkms.js';
import { twoKernels } from '../helpers/kernels.js';
import { ctxFor, tempDir, writeConf } from './conf-helpers.js';
import { dkmsReadConf, haveDkms } from './dkms-oracle.js';

const KERNELS = twoKernels();
const PKGS = { v4l2loopback: 'v4l2loopback-dkms', ddcci: 'ddcci-dkms', lttng: 'lttng-modules-dkms', acpi: 'acpi-call-dkms' } as const;
const src: Record<string, string> = {};

beforeAll(async () => {
  for (const [k, pkg] of Object.entries(PKGS)) src[k] = await debianDkmsSource(pkg);
}, 600_000);

function evalFor(key: keyof typeof PKGS, kernel: string, extra = {}): Promise<EvaluatedConf> {
  const dir = src[key]!;
  const [m, v] = [dir.split('/').pop()!.replace(/-[^-]+$/, ''), dir.split('/').pop()!.replace(/^.*-/, '')];
  return loadConf(ctxFor(join(dir, 'dkms.conf'), kernel, { module: m, moduleVersion: v, ...extra }));
}

describe.each(KERNELS)('Debian packages on %s', (k) => {
  it('v4l2loopback-dkms 0.12.7: shell logic on .config, custom MAKE', async () => {
    const c = await evalFor('v4l2loopback', k);
    expect(confToJson(c)).toEqual({
      name: 'v4l2loopback',
      version: '0.12.7',
      autoinstall: true,
      make: `make KERNEL_DIR=/lib/modules/${k}/build all`,
      clean: 'make clean',
      preBuild: null,
      modules: [{ built: 'v4l2loopback.ko', destName: 'v4l2loopback', destLocation: '/extra', strip: true }],
      excluded: false,
      excludeReasons: [],
    });
  });

  it('ddcci-dkms 0.4.2: two modules in subdirectories, grep of .config', async () => {
    const c = await evalFor('ddcci', k);
    expect(confToJson(c)).toEqual({
      name: 'ddcci',
      version: '0.4.2',
      autoinstall: true,
      make: `make KVER=${k} -C /var/lib/dkms/ddcci/0.4.2/build`,
      clean: 'make clean',
      preBuild: null,
      modules: [
        { built: 'ddcci/ddcci.ko', destName: 'ddcci', destLocation: '/extra', strip: true },
        { built: 'ddcci-backlight/ddcci-backlight.ko', destName: 'ddcci-backlight', destLocation: '/extra', strip: true },
      ],
      excluded: false,
      excludeReasons: [],
    });
  });

  it('ddcci-dkms: headers without .config trip its BUILD_EXCLUSIVE_ARCH switch', async () => {
    const c = await evalFor('ddcci', k, { kernelSourceDir: tempDir() });
    expect(c.excludeReasons).toEqual(['BUILD_EXCLUSIVE_ARCH "^do_not_build$" does not match x86_64']);
  });

  it('acpi-call-dkms 1.2.2: BUILD_EXCLUSIVE_CONFIG met, default-style make', async () => {
    const c = await evalFor('acpi', k);
    expect([c.make, c.clean, c.excluded]).toEqual([
      `make -C /lib/modules/${k}/build M=/var/lib/dkms/acpi-call/1.2.2/build`,
      `make -C /lib/modules/${k}/build M=/var/lib/dkms/acpi-call/1.2.2/build clean`,
      false,
    ]);
    expect(c.modules.map((m) => m.builtName)).toEqual(['acpi_call']);
  });

  it('lttng-modules-dkms 2.13.9: the module list depends on parsing X.Y.Z-N out of the kernel name', async () => {
    const c = await evalFor('lttng', k);
    expect(c.make).toBe(`make -C /lib/modules/${k}/build M=/var/lib/dkms/lttng-modules/2.13.9/build modules CONFIG_LTTNG=m CONFIG_LTTNG_CLOCK_PLUGIN_TEST=m`);
    const names = c.modules.map((m) => m.builtName);
    expect(names).toContain('lttng-tracer');
    expect(names).toContain('lttng-probe-net');
    // Its sed wants "X.Y.Z-"; "6.12.117+deb12-amd64" yields an empty VERSION, so
    // probes gated on the version silently disappear on the newer ABI names.
    const parses = /^\d+\.\d+\.\d+-/.test(k);
    expect(names.includes('lttng-probe-9p')).toBe(parses);
  });
});

describe.runIf(haveDkms)('agreement with Debian dkms 3.0.10 read_conf', () => {
  const dir = tempDir();
  const synthetic: Record<string, string> = {
    matches: `PACKAGE_NAME=syn\nPACKAGE_VERSION=1
BUILT_MODULE_NAME[0]=a; BUILT_MODULE_LOCATION[0]=src; DEST_MODULE_LOCATION[0]=/kernel/extra; STRIP[0]=no
BUILT_MODULE_NAME[1]=b; DEST_MODULE_LOCATION[1]=/updates; DEST_MODULE_NAME[1]=bee
MAKE[0]="make zero"; MAKE[1]="make six-one $kernelver"; MAKE_MATCH[1]='^6\\.1\\.'; MAKE[2]='make six-twelve $kernelver'; MAKE_MATCH[2]='^6\\.12'
PATCH[0]=a.patch; PATCH[1]=b.patch; PATCH_MATCH[1]='^6\\.12'
BUILD_EXCLUSIVE_CONFIG="CONFIG_AMD_PMF"
`,
    quoting: `PACKAGE_NAME=q\nPACKAGE_VERSION=1.2\nL=local
MAKE="make V=\\"$PACKAGE_VERSION\\"   L=$L  K='$kernelver'"
CLEAN='echo $L \\$kernelver'
BUILT_MODULE_NAME=q; DEST_MODULE_LOCATION=/extra
BUILD_EXCLUSIVE_KERNEL='^6\\.1\\.'
`,
  };

  const cases: [string, string, string, string][] = [];
  for (const k of KERNELS) {
    for (const key of Object.keys(PKGS)) cases.push([`${key} on ${k}`, key, k, '']);
    for (const [name, text] of Object.entries(synthetic)) cases.push([`${name} on ${k}`, '', k, text]);
  }

  it.each(cases)('%s', async (_label, key, k, text) => {
    let conf: string;
    let m: string;
    let v: string;
    if (key) {
      const d = src[key]!;
      conf = join(d, 'dkms.conf');
      const base = d.split('/').pop()!;
      [m, v] = [base.replace(/-[^-]+$/, ''), base.replace(/^.*-/, '')];
    } else {
      conf = writeConf(dir, text);
      [m, v] = ['syn', '1'];
    }
    const ours = await loadConf(ctxFor(conf, k, { module: m, moduleVersion: v }));
    const theirs = dkmsReadConf(conf, { kernel: k, arch: 'x86_64', module: m, version: v, dkmsTree: '/var/lib/dkms' });
    const { ok, ...expected } = theirs;
    expect(ok).toBe(true);
    expect(expected.make).not.toBe('');
    expect({
      make: ours.make,
      clean: ours.clean,
      patches: ours.patches,
      excluded: ours.excluded,
      built: ours.modules.map((x) => `${x.builtLocation}${x.builtName}`),
      destName: ours.modules.map((x) => x.destName),
      destLocation: ours.modules.map((x) => destLocationForDistro(x.destLocation, { id: 'debian', idLike: null })),
      strip: ours.modules.map((x) => x.strip),
    }).toEqual(expected);
  });
});
