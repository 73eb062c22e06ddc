/**
 * A minimal ELF reader: header and section headers of ELF32/ELF64 files in
 * either byte order, enough to find named sections in kernel modules of any
 * architecture. Every offset read from the file is bounds-checked.
 */
import { KbundleError } from '../util/errors.js';
import { stripSignature } from '../sign/appended-signature.js';

export type ElfClass = 32 | 64;
export type ElfEndian = 'le' | 'be';

export interface ElfHeader {
  elfClass: ElfClass;
  endian: ElfEndian;
  /** e_type: 1 = ET_REL (kernel modules). */
  type: number;
  machine: number;
  shoff: number;
  shentsize: number;
  shnum: number;
  shstrndx: number;
}

export interface ElfSection {
  index: number;
  name: string;
  /** sh_type: 1 = PROGBITS, 8 = NOBITS, 4 = RELA, 9 = REL. */
  type: number;
  flags: number;
  offset: number;
  size: number;
  link: number;
  info: number;
  entsize: number;
}

export interface ElfFile {
  header: ElfHeader;
  sections: ElfSection[];
  /** The file image the offsets refer to (a signed module's ELF body). */
  image: Buffer;
}

const SHT_NOBITS = 8;
const SHN_XINDEX = 0xffff;

class Reader {
  constructor(
    readonly buf: Buffer,
    readonly elfClass: ElfClass,
    readonly endian: ElfEndian,
  ) {}
  private check(off: number, len: number): void {
    if (off < 0 || off + len > this.buf.length) throw new KbundleError(`malformed ELF: read of ${len} bytes at ${off} past end of ${this.buf.length}-byte file`);
  }
  u16(off: number): number {
    this.check(off, 2);
    return this.endian === 'le' ? this.buf.readUInt16LE(off) : this.buf.readUInt16BE(off);
  }
  u32(off: number): number {
    this.check(off, 4);
    return this.endian === 'le' ? this.buf.readUInt32LE(off) : this.buf.readUInt32BE(off);
  }
  u64(off: number): number {
    this.check(off, 8);
    const v = this.endian === 'le' ? this.buf.readBigUInt64LE(off) : this.buf.readBigUInt64BE(off);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new KbundleError(`malformed ELF: 64-bit value ${v} at ${off} is out of range`);
    return Number(v);
  }
  /** An address-sized field (Elf32_Addr/Off or Elf64_Addr/Off/Xword). */
  word(off: number): number {
    return this.elfClass === 64 ? this.u64(off) : this.u32(off);
  }
}

export function isElf(buf: Buffer): boolean {
  return buf.length >= 4 && buf[0] === 0x7f && buf[1] === 0x45 && buf[2] === 0x4c && buf[3] === 0x46;
}

function readHeader(buf: Buffer): { r: Reader; header: ElfHeader } {
  if (!isElf(buf)) throw new KbundleError('not an ELF file');
  if (buf.length < 16) throw new KbundleError('malformed ELF: truncated identification');
  const cls = buf[4];
  const data = buf[5];
  if (cls !== 1 && cls !== 2) throw new KbundleError(`malformed ELF: unknown class ${cls}`);
  if (data !== 1 && data !== 2) throw new KbundleError(`malformed ELF: unknown data encoding ${data}`);
  const r = new Reader(buf, cls === 1 ? 32 : 64, data === 1 ? 'le' : 'be');
  // Field offsets from the System V gABI Elf32_Ehdr / Elf64_Ehdr layouts.
  const is64 = r.elfClass === 64;
  const header: ElfHeader = {
    elfClass: r.elfClass,
    endian: r.endian,
    type: r.u16(16),
    machine: r.u16(18),
    shoff: r.word(is64 ? 40 : 32),
    shentsize: r.u16(is64 ? 58 : 46),
    shnum: r.u16(is64 ? 60 : 48),
    shstrndx: r.u16(is64 ? 62 : 50),
  };
  return { r, header };
}

interface RawSection extends Omit<ElfSection, 'name' | 'index'> {
  nameOff: number;
}

/**
 * Where each field of a section header is (Elf32_Shdr, Elf64_Shdr in elf(5)):
 * name and type come first in both; flags, addresses, offsets and sizes are
 * native words (Reader.word), link and info 32-bit in both.
 */
const SHDR_FIELDS = {
  32: { flags: 8, offset: 16, size: 20, link: 24, info: 28, entsize: 36 },
  64: { flags: 8, offset: 24, size: 32, link: 40, info: 44, entsize: 56 },
} as const;

function readSectionHeader(r: Reader, h: ElfHeader, i: number): RawSection {
  const base = h.shoff + i * h.shentsize;
  const f = SHDR_FIELDS[r.elfClass];
  return {
    nameOff: r.u32(base),
    type: r.u32(base + 4),
    flags: r.word(base + f.flags),
    offset: r.word(base + f.offset),
    size: r.word(base + f.size),
    link: r.u32(base + f.link),
    info: r.u32(base + f.info),
    entsize: r.word(base + f.entsize),
  };
}

function cString(buf: Buffer, start: number, end: number): string {
  const nul = buf.indexOf(0, start);
  if (nul === -1 || nul >= end) throw new KbundleError('malformed ELF: unterminated section name');
  return buf.toString('latin1', start, nul);
}

/**
 * Parses an ELF image. A module signature trailer is removed first, so the
 * reader sees exactly the bytes the kernel loads after checking the signature.
 */
export function parseElf(input: Buffer): ElfFile {
  const buf = stripSignature(input);
  const { r, header } = readHeader(buf);
  if (header.shoff === 0) return { header, sections: [], image: buf };
  const minEnt = header.elfClass === 64 ? 64 : 40;
  if (header.shentsize < minEnt) throw new KbundleError(`malformed ELF: section header size ${header.shentsize}`);
  // Large section counts/indexes live in section 0 (gABI "Extended Section Indexes").
  const first = readSectionHeader(r, header, 0);
  const shnum = header.shnum === 0 ? first.size : header.shnum;
  const shstrndx = header.shstrndx === SHN_XINDEX ? first.link : header.shstrndx;
  if (header.shoff + shnum * header.shentsize > buf.length) throw new KbundleError('malformed ELF: section header table past end of file');
  const raw = Array.from({ length: shnum }, (_, i) => readSectionHeader(r, header, i));
  const strtab = raw[shstrndx];
  if (!strtab) throw new KbundleError(`malformed ELF: section name table index ${shstrndx} out of range`);
  checkRange(buf, strtab);
  const sections = raw.map((s, index) => {
    if (s.nameOff >= strtab.size) throw new KbundleError(`malformed ELF: section ${index} name offset out of range`);
    const { nameOff: _, ...rest } = s;
    return { index, name: cString(buf, strtab.offset + s.nameOff, strtab.offset + strtab.size), ...rest };
  });
  return { header: { ...header, shnum, shstrndx }, sections, image: buf };
}

function checkRange(buf: Buffer, s: { offset: number; size: number; type: number }): void {
  if (s.type === SHT_NOBITS) return;
  if (s.offset + s.size > buf.length) throw new KbundleError(`malformed ELF: section data at ${s.offset}+${s.size} past end of ${buf.length}-byte image`);
}

export function findSection(elf: ElfFile, name: string): ElfSection | undefined {
  return elf.sections.find((s) => s.name === name);
}

/** Section contents; NOBITS sections have none. */
export function sectionData(elf: ElfFile, s: ElfSection): Buffer {
  if (s.type === SHT_NOBITS) return Buffer.alloc(0);
  checkRange(elf.image, s);
  return elf.image.subarray(s.offset, s.offset + s.size);
}
