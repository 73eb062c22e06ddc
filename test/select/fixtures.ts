// Real modules and real target trees for selection tests: a two-module
// package built with kbuild against installed headers, and temp copies of a
// kernel's module directory that differ from it in controlled ways.
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { installedKernels } from '../helpers/kernels.js';
import { readModule } from '../../src/kmod/compression.js';
import { candidateFromElf } from '../../src/select/candidate.js';
import type { Candidate } from '../../src/select/types.js';

/** A kernel with headers *and* its in-tree modules (needed for a real vermagic and usbcore). */
export function kernelWithModules(): string {
  const k = installedKernels().find((k) => existsSync(`/lib/modules/${k}/kernel/drivers/usb/core`));
  if (!k) throw new Error('need a kernel with headers and in-tree modules (incl. usbcore) under /lib/modules');
  return k;
}

/** A kernel of another series than `k`, with headers. */
export function otherSeriesKernel(k: string): string {
  const series = (x: string) => x.split('.').slice(0, 2).join('.');
  const o = installedKernels().find((x) => series(x) !== series(k));
  if (!o) throw new Error(`need headers of a kernel series other than ${series(k)}`);
  return o;
}

// kbsel_a exports a symbol and registers a USB driver (imports owned by the
// usbcore module, so depends=usbcore); kbsel_b imports kbsel_a's export, so the
// package is two modules that must come from one build.
const A_SRC = `#include <linux/module.h>
#include <linux/usb.h>
static const struct usb_device_id ids[] = { { USB_DEVICE(0xfffe, 0x0001) }, {} };
MODULE_DEVICE_TABLE(usb, ids);
static int p(struct usb_interface *i, const struct usb_device_id *id) { return -ENODEV; }
static void d(struct usb_interface *i) {}
static struct usb_driver drv = { .name = "kbsel_a", .id_table = ids, .probe = p, .disconnect = d };
int kbsel_hello(int x) { printk(KERN_INFO "kbsel %d\\n", x); return x + 1; }
EXPORT_SYMBOL_GPL(kbsel_hello);
module_usb_driver(drv);
MODULE_LICENSE("GPL");
`;
const B_SRC = `#include <linux/module.h>
extern int kbsel_hello(int x);
static int __init b_init(void) { printk(KERN_INFO "kbsel_b %d\\n", kbsel_hello(1)); return 0; }
static void __exit b_exit(void) {}
module_init(b_init);
module_exit(b_exit);
MODULE_LICENSE("GPL");
`;

export interface BuiltPackage {
  kernel: string;
  dir: string;
  a: Candidate;
  b: Candidate;
}

const ARCH = 'x86_64';

export async function buildPackage(kernel: string): Promise<BuiltPackage> {
  const dir = mkdtempSync(join(tmpdir(), `kbsel-${kernel}-`));
  writeFileSync(join(dir, 'kbsel_a.c'), A_SRC);
  writeFileSync(join(dir, 'kbsel_b.c'), B_SRC);
  writeFileSync(join(dir, 'Makefile'), 'obj-m := kbsel_a.o kbsel_b.o\n');
  const r = await execa('make', ['-C', `/lib/modules/${kernel}/build`, `M=${dir}`, 'modules'], { reject: false, all: true });
  if (r.exitCode !== 0) throw new Error(`building kbsel for ${kernel} failed:\n${r.all}`);
  const cand = async (m: string) => candidateFromElf(await readModule(join(dir, `${m}.ko`)), { id: `${m}@${kernel}`, arch: ARCH });
  return { kernel, dir, a: await cand('kbsel_a'), b: await cand('kbsel_b') };
}

/**
 * A kernel module directory under a fresh root, named `release`, holding
 * copies of real files of kernel `from`: its Module.symvers (optionally
 * edited), an include/ dir, dummy.ko.xz (for the vermagic) and, unless told
 * otherwise, the usbcore modules.
 */
export function makeTargetTree(
  from: string,
  release: string,
  opts: { withUsbcore?: boolean; editSymvers?: (text: string) => string; headers?: boolean } = {},
): { root: string; moduleDir: string } {
  const root = mkdtempSync(join(tmpdir(), 'kbsel-root-'));
  const moduleDir = join(root, 'lib/modules', release);
  const build = join(moduleDir, 'build');
  mkdirSync(build, { recursive: true });
  if (opts.headers !== false) mkdirSync(join(build, 'include'));
  const symvers = readFileSync(`/lib/modules/${from}/build/Module.symvers`, 'utf8');
  writeFileSync(join(build, 'Module.symvers'), opts.editSymvers ? opts.editSymvers(symvers) : symvers);
  const copies = ['kernel/drivers/net/dummy'];
  if (opts.withUsbcore !== false) copies.push('kernel/drivers/usb/core/usbcore', 'kernel/drivers/usb/common/usb-common');
  for (const rel of copies) {
    const dir = dirname(`/lib/modules/${from}/${rel}`);
    const base = rel.slice(rel.lastIndexOf('/') + 1);
    const file = readdirSync(dir).find((n) => n.startsWith(`${base}.ko`));
    if (!file) throw new Error(`${from} has no ${rel}.ko*`);
    mkdirSync(join(moduleDir, dirname(rel)), { recursive: true });
    copyFileSync(join(dir, file), join(moduleDir, dirname(rel), file));
  }
  return { root, moduleDir };
}

/** Replaces the CRC of `symbol` in Module.symvers text; returns the new text. */
export function setSymversCrc(text: string, symbol: string, crc: number): string {
  const re = new RegExp(`^0x[0-9a-f]{8}\\t${symbol}\\t`, 'm');
  if (!re.test(text)) throw new Error(`${symbol} not in Module.symvers`);
  return text.replace(re, `0x${crc.toString(16).padStart(8, '0')}\t${symbol}\t`);
}
