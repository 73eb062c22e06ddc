// What two installed module files must share to count as "the same module":
// the ELF bytes, with two parts set aside that cannot match between two tools
// even for identical builds:
//  - the .BTF section: kbuild runs `pahole -J -j`, and before pahole 1.27 the
//    BTF that -j encodes depends on thread timing (Debian 12 has 1.24), so
//    dkms's own builds of one source differ there; kbundle runs pahole
//    without -j (src/build/pahole-shim.ts). Its size must still match.
//  - the appended signature, which covers those bytes; instead its signer
//    key id and hash algorithm must match (modinfo -F sig_key/sig_hashalgo).
// The compression container is also set aside: dkms 3.0.10 runs `xz -f`
// (CRC64 check), kbundle `xz --check=crc32 --lzma2=dict=1MiB`, as the kernel
// compresses its own modules (docs/dkms-dropin.md).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

const MAGIC = Buffer.from('~Module signature appended~\n');

function decompressed(path: string): Buffer {
  if (path.endsWith('.xz')) return execFileSync('xz', ['-dc', path], { maxBuffer: 1 << 28 });
  if (path.endsWith('.zst')) return execFileSync('zstd', ['-dc', path], { maxBuffer: 1 << 28 });
  if (path.endsWith('.gz')) return execFileSync('gzip', ['-dc', path], { maxBuffer: 1 << 28 });
  return readFileSync(path);
}

/** The ELF image without its signature trailer (include/linux/module_signature.h: 12-byte struct, sig_len big-endian at offset 8, then the magic). */
function unsigned(ko: Buffer): Buffer {
  if (!ko.subarray(ko.length - MAGIC.length).equals(MAGIC)) return ko;
  const info = ko.length - MAGIC.length - 12;
  return ko.subarray(0, info - ko.readUInt32BE(info + 8));
}

/** Zeroes the bytes of the named ELF64 section (little-endian, as on x86_64 and arm64). */
function blankSection(elf: Buffer, name: string): { elf: Buffer; size: number } {
  const out = Buffer.from(elf);
  const shoff = Number(out.readBigUInt64LE(0x28));
  const shentsize = out.readUInt16LE(0x3a);
  const shnum = out.readUInt16LE(0x3c);
  const strndx = out.readUInt16LE(0x3e);
  const sh = (i: number) => shoff + i * shentsize;
  const strOff = Number(out.readBigUInt64LE(sh(strndx) + 0x18));
  for (let i = 0; i < shnum; i++) {
    const nameOff = out.readUInt32LE(sh(i));
    const end = out.indexOf(0, strOff + nameOff);
    if (out.toString('latin1', strOff + nameOff, end) !== name) continue;
    const off = Number(out.readBigUInt64LE(sh(i) + 0x18));
    const size = Number(out.readBigUInt64LE(sh(i) + 0x20));
    out.fill(0, off, off + size);
    return { elf: out, size };
  }
  return { elf: out, size: 0 };
}

/** "sha256=<hex> btf=<size> key=<sig_key> hash=<algo>" for an installed module file. */
export function moduleIdentity(path: string): string {
  const { elf, size } = blankSection(unsigned(decompressed(path)), '.BTF');
  const field = (f: string) => execFileSync('modinfo', ['-F', f, path], { encoding: 'utf8' }).trim();
  return `sha256=${createHash('sha256').update(elf).digest('hex')} btf=${size} key=${field('sig_key')} hash=${field('sig_hashalgo')}`;
}
