// A busybox-static initramfs (cpio newc, gzip) around a root directory the installer wrote into.
import { chmodSync, mkdirSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { sh } from '../helpers/scratch.js';

const APPLETS = ['sh', 'mount', 'modprobe', 'insmod', 'rmmod', 'lsmod', 'cat', 'echo', 'poweroff', 'dmesg', 'sleep', 'ls'];

/** Adds busybox, the mount points and `/init` (the script given) to `root`. */
export function prepareRoot(root: string, init: string): void {
  for (const d of ['bin', 'proc', 'sys', 'dev', 'tmp']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  for (const a of APPLETS) symlinkSync('busybox', join(root, 'bin', a));
  // busybox's modprobe and insmod are applets of one static binary: no /lib, no libc needed.
  writeFileSync(join(root, 'init'), init, { mode: 0o755 });
}

/** `find . | cpio -o -H newc | gzip` of root into file. */
export function packInitramfs(root: string, file: string): void {
  const r = sh('sh', ['-c', `cd '${root}' && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1 > '${file}'`]);
  if (r.code !== 0) throw new Error(`cpio: ${r.stderr}`);
}
