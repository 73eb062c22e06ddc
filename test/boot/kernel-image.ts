// A Debian kernel image for the boot test: apt-get download linux-image-<k>, keep only
// what the test needs (vmlinuz, one in-tree module for the target's vermagic, modules.builtin/order),
// cached between runs.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { sh } from '../helpers/scratch.js';

export const BOOT_CACHE = process.env.KBUNDLE_TEST_BOOT_CACHE ?? '/var/cache/kbundle-test/boot';

export interface KernelImage {
  kernel: string;
  /** The unpacked subset: boot/vmlinuz-<k>, lib/modules/<k>/... */
  dir: string;
  vmlinuz: string;
}

export function kernelImage(kernel: string): KernelImage {
  const dir = join(BOOT_CACHE, kernel);
  const vmlinuz = join(dir, 'boot', `vmlinuz-${kernel}`);
  if (existsSync(vmlinuz)) return { kernel, dir, vmlinuz };
  const work = `${dir}.partial-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const dl = sh('sh', ['-c', `cd '${work}' && apt-get download -q linux-image-${kernel}`]);
  if (dl.code !== 0) throw new Error(`apt-get download linux-image-${kernel} failed: ${dl.stderr}`);
  const deb = readdirSync(work).find((n) => n.endsWith('.deb'));
  if (!deb) throw new Error(`apt-get download linux-image-${kernel} wrote no .deb`);
  const x = sh('sh', [
    '-c',
    `cd '${work}' && dpkg-deb --fsys-tarfile '${deb}' | tar -x --wildcards './boot/vmlinuz-*' './lib/modules/*/kernel/drivers/net/dummy.ko*' './lib/modules/*/modules.builtin' './lib/modules/*/modules.order' && rm -f '${deb}'`,
  ]);
  if (x.code !== 0) throw new Error(`unpacking linux-image-${kernel}: ${x.stderr}`);
  if (!existsSync(join(work, 'boot', `vmlinuz-${kernel}`))) throw new Error(`linux-image-${kernel} has no boot/vmlinuz-${kernel}`);
  rmSync(dir, { recursive: true, force: true });
  renameSync(work, dir);
  return { kernel, dir, vmlinuz };
}
