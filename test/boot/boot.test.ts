// Proof on a booted kernel: the installer's choice is the kernel's choice.
// A Debian kernel image (the release of the installed 6.1 headers) boots in qemu (TCG) with a
// busybox initramfs whose root the installer wrote (`bundle install --root`); the guest loads the
// module with modprobe and its own init message appears on the console. A binary built for
// another kernel (6.12), which the installer refuses, is then force-loaded with insmod: the
// kernel refuses it too.
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE_PUB, makeProject } from '../helpers/bundles.js';
import { armSibling } from '../helpers/cross.js';
import { installedKernels } from '../helpers/kernels.js';
import { kbundle } from '../helpers/scratch.js';
import { packInitramfs, prepareRoot } from './initramfs.js';
import { kernelImage, type KernelImage } from './kernel-image.js';
import { bootQemu, type Boot } from './qemu.js';

const K = armSibling().amd64;
const OTHER = installedKernels().find((k) => k.startsWith('6.12.'));
const EPOCH = { SOURCE_DATE_EPOCH: '1700000000' };
const GREETING = 'hello: hello, kbundle-boot';

const INIT = `#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo KBUNDLE-BOOT-START
modprobe hello whom=kbundle-boot && echo KBUNDLE-MODPROBE-OK || echo KBUNDLE-MODPROBE-FAILED
grep '^hello ' /proc/modules && echo KBUNDLE-LOADED
rmmod hello
insmod /refused/hello.ko
echo KBUNDLE-INSMOD-RC=$?
grep -q '^hello ' /proc/modules && echo KBUNDLE-REFUSED-LOADED
echo KBUNDLE-BOOT-END
poweroff -f
`;

function findFile(dir: string, name: RegExp): string | null {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      const f = findFile(p, name);
      if (f) return f;
    } else if (name.test(e.name)) return p;
  }
  return null;
}

describe('boot: the installed module loads on the real kernel, the refused one does not', () => {
  let image: KernelImage;
  let root: string;
  let plan: { code: number; out: string };
  let install: { code: number; out: string };
  let boot: Boot;

  beforeAll(() => {
    if (!OTHER) throw new Error(`no 6.12 headers installed (found ${installedKernels().join(', ')})`);
    image = kernelImage(K);
    // One bundle for K and 6.12 (installed), one with only the 6.12 build (refused).
    const both = makeProject(['bundles/hello-1.0'], [K, OTHER]);
    const bothFile = join(both.dir, 'both.kbundle');
    const b1 = kbundle(['bundle', 'build', both.manifest, '-o', bothFile, '-q'], EPOCH);
    if (b1.code !== 0) throw new Error(b1.stderr);
    const other = makeProject(['bundles/hello-1.0'], [OTHER]);
    const otherFile = join(other.dir, 'other.kbundle');
    const b2 = kbundle(['bundle', 'build', other.manifest, '-o', otherFile, '-q'], EPOCH);
    if (b2.code !== 0) throw new Error(b2.stderr);

    // The initramfs root: the image's in-tree module (the target's vermagic) and its Module.symvers (CRCs).
    root = join(both.dir, 'initramfs');
    cpSync(join(image.dir, 'lib'), join(root, 'lib'), { recursive: true });
    mkdirSync(join(root, 'usr/src', `linux-headers-${K}`), { recursive: true });
    copyFileSync(`/usr/src/linux-headers-${K}/Module.symvers`, join(root, 'usr/src', `linux-headers-${K}`, 'Module.symvers'));

    const i = kbundle(['bundle', 'install', bothFile, '--root', root, '-k', K, '-a', 'x86_64', '--trust', BUNDLE_PUB]);
    install = { code: i.code, out: i.stdout + i.stderr };
    const p = kbundle(['bundle', 'plan', otherFile, '--root', root, '-k', K, '-a', 'x86_64', '--trust', BUNDLE_PUB]);
    plan = { code: p.code, out: p.stdout + p.stderr };

    // The refused binary, as the installer would have had it: extracted from the 6.12 bundle.
    const ex = join(other.dir, 'extract');
    const e = kbundle(['bundle', 'extract', otherFile, '-k', OTHER, '-o', ex, '--trust', BUNDLE_PUB, '--compress', 'none']);
    if (e.code !== 0) throw new Error(e.stderr);
    mkdirSync(join(root, 'refused'));
    copyFileSync(findFile(ex, /^hello\.ko$/)!, join(root, 'refused/hello.ko'));

    prepareRoot(root, INIT);
    const initrd = join(both.dir, 'initrd.gz');
    packInitramfs(root, initrd);
    boot = bootQemu(image.vmlinuz, initrd);
    writeFileSync(join(both.dir, 'console.log'), boot.console);
  });

  it('the installer picks the exact build for the kernel it boots, and refuses the 6.12 build (41)', () => {
    expect(install.code, install.out).toBe(0);
    const ko = findFile(join(root, 'lib/modules', K), /^hello\.ko/);
    expect(ko).not.toBeNull();
    expect(readFileSync(join(root, 'lib/modules', K, 'modules.dep'), 'utf8')).toMatch(/hello\.ko[^:]*:/);
    expect(plan.code, plan.out).toBe(41);
    expect(plan.out).toContain(`built for kernel ${OTHER}, target is ${K}`);
  });

  it('boots, and modprobe loads the installed module: its own init message is on the console', () => {
    expect(boot.timedOut, boot.console.slice(-3000)).toBe(false);
    expect(boot.console).toContain('KBUNDLE-BOOT-START');
    expect(boot.console).toContain(`Linux version ${K.replace(/-amd64$/, '')}`);
    expect(boot.console).toContain(GREETING);
    expect(boot.console).toContain('KBUNDLE-MODPROBE-OK');
    expect(boot.console).toContain('KBUNDLE-LOADED');
    expect(boot.console).toContain('KBUNDLE-BOOT-END');
  });

  it('the kernel refuses the binary the installer refused', () => {
    // kernel/module/version.c: check_version() prints "disagrees about version of symbol";
    // the load fails with ENOEXEC, which busybox insmod reports as "Invalid module format"/"Exec format error".
    expect(boot.console).toMatch(/hello: (disagrees about version of symbol \S+|no symbol version for \S+|.*version magic .* should be )/);
    expect(boot.console).toMatch(/KBUNDLE-INSMOD-RC=[1-9]/);
    expect(boot.console).toMatch(/invalid module format|exec format error/i);
    expect(boot.console).not.toContain('KBUNDLE-REFUSED-LOADED');
    expect(existsSync(join(root, 'refused/hello.ko'))).toBe(true);
  });
});
