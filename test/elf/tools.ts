// Real binutils/kmod tools the ELF tests compare against.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'kbelf-'));
}

export async function out(cmd: string, args: string[]): Promise<string> {
  const r = await execa(cmd, args, { stripFinalNewline: false });
  return String(r.stdout);
}

/** `modinfo -F field` values, one per line; `modinfo` prints an empty line for an empty value. */
export async function modinfoF(path: string, field: string): Promise<string[]> {
  const s = await out('/usr/sbin/modinfo', ['-F', field, path]);
  return s === '' ? [] : s.replace(/\n$/, '').split('\n');
}

export async function dumpModversions(path: string): Promise<string[]> {
  const s = await out('/usr/sbin/modprobe', ['--dump-modversions', path]);
  return s.split('\n').filter(Boolean);
}

/**
 * A real ELF object of any class/byte order, made by binutils from raw bytes:
 * the data becomes one section named `section`. Named .ko so kmod accepts it.
 */
export async function objcopyElf(dir: string, target: string, section: string, data: Buffer): Promise<string> {
  const bin = join(dir, `${target}-${section.replace(/\W/g, '')}.bin`);
  const ko = bin.replace(/\.bin$/, '.ko');
  writeFileSync(bin, data);
  await execa('objcopy', ['-I', 'binary', '-O', target, '--rename-section', `.data=${section}`, bin, ko]);
  return ko;
}
