/** e_machine of an ELF file or of a module as shipped (compressed ones are decompressed first). */
import { open } from 'node:fs/promises';

/** e_machine of a plain ELF file (first 20 bytes), or null when the file is not ELF. */
export async function elfMachineOfFile(path: string): Promise<number | null> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(64);
    const { bytesRead } = await fh.read(head, 0, 64, 0);
    return elfMachineOf(head.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

/** e_machine of an ELF image, or null when it is not one. */
export function elfMachineOf(buf: Buffer): number | null {
  if (buf.length < 20 || buf.readUInt32BE(0) !== 0x7f454c46) return null;
  // e_ident[EI_DATA] (1 = little, 2 = big endian), then e_machine at offset 18 in both classes (System V gABI).
  if (buf[5] === 1) return buf.readUInt16LE(18);
  if (buf[5] === 2) return buf.readUInt16BE(18);
  return null;
}
