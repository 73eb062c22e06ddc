/**
 * ustar header encoding for the reproducible tar writer.
 *
 * The layout is byte for byte the one tar-stream 3 writes for the same
 * fields (bundles written before this encoder existed keep their digests;
 * test/bundle/pack-path.test.ts compares the two): octal fields zero-padded and
 * space-terminated, owner 0:0 with empty names, a pax header carrying
 * `path`/`linkpath` when a name is not ASCII or does not fit the
 * name/prefix split. Writing headers directly, instead of through
 * tar-stream's per-entry streams, removed most of the packer's per-file cost.
 */

export type UstarType = 'file' | 'directory' | 'symlink';

export interface UstarHeader {
  /** Entry name as stored (directories end in `/`). */
  name: string;
  type: UstarType;
  mode: number;
  /** Bytes of content that follow; 0 for directories and symlinks. */
  size: number;
  /** Whole seconds since the epoch. */
  mtime: number;
  linkname?: string;
}

export const BLOCK = 512;
/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE: Buffer = Buffer.alloc(2 * BLOCK);

const TYPEFLAG: Record<UstarType | 'pax-header', number> = { file: 0, symlink: 2, directory: 5, 'pax-header': 72 };
const USTAR_MAGIC = Buffer.from('ustar\x0000', 'latin1');

/** Zero bytes that pad `size` up to a whole block. */
export function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return rest === 0 ? EMPTY : END_OF_ARCHIVE.subarray(0, BLOCK - rest);
}
const EMPTY = Buffer.alloc(0);

/** The header block(s) for one entry: one ustar block, or a pax header, its records and the ustar block. */
export function encodeHeader(h: UstarHeader): Buffer {
  const plain = encodeBlock(h.name, h, h.type, h.size, h.linkname);
  if (plain) return plain;
  const records = paxRecords(h.name, h.linkname);
  // tar-stream names both the pax header and the entry after it "PaxHeader";
  // readers take the real names from the records.
  const linkname = h.linkname ? 'PaxHeader' : undefined;
  const paxBlock = encodeBlock('PaxHeader', h, 'pax-header', records.length, linkname)!;
  const entryBlock = encodeBlock('PaxHeader', h, h.type, h.size, linkname)!;
  return Buffer.concat([paxBlock, records, padding(records.length), entryBlock]);
}

function encodeBlock(fullName: string, h: UstarHeader, type: UstarType | 'pax-header', size: number, linkname: string | undefined): Buffer | null {
  if (!isAscii(fullName)) return null;
  let name = fullName;
  let prefix = '';
  while (name.length > 100) {
    const i = name.indexOf('/');
    if (i === -1) return null;
    prefix += prefix ? '/' + name.slice(0, i) : name.slice(0, i);
    name = name.slice(i + 1);
  }
  if (prefix.length > 155) return null;
  if (linkname && Buffer.byteLength(linkname) > 100) return null;

  const buf = Buffer.alloc(BLOCK);
  buf.write(name, 0, 'latin1');
  buf.write(octal(h.mode & 0o7777, 6), 100, 'latin1');
  buf.write(octal(0, 6), 108, 'latin1'); // uid
  buf.write(octal(0, 6), 116, 'latin1'); // gid
  writeSize(buf, size);
  buf.write(octal(h.mtime, 11), 136, 'latin1');
  buf[156] = 0x30 + TYPEFLAG[type];
  if (linkname) buf.write(linkname, 157, 'utf8');
  USTAR_MAGIC.copy(buf, 257);
  buf.write(octal(0, 6), 329, 'latin1'); // devmajor
  buf.write(octal(0, 6), 337, 'latin1'); // devminor
  if (prefix) buf.write(prefix, 345, 'latin1');
  buf.write(octal(checksum(buf), 6), 148, 'latin1');
  return buf;
}

function isAscii(s: string): boolean {
  // tar-stream's test: a name whose UTF-8 length differs from its length goes to pax.
  return Buffer.byteLength(s) === s.length;
}

function octal(value: number, digits: number): string {
  const s = value.toString(8);
  if (s.length > digits) return '7'.repeat(digits) + ' ';
  return s.padStart(digits, '0') + ' ';
}

function writeSize(buf: Buffer, size: number): void {
  if (size.toString(8).length <= 11) {
    buf.write(octal(size, 11), 124, 'latin1');
    return;
  }
  // base-256 for sizes of 8 GiB and more
  buf[124] = 0x80;
  for (let i = 11, n = size; i > 0; i--) {
    buf[124 + i] = n & 0xff;
    n = Math.floor(n / 0x100);
  }
}

/** The header checksum: every byte of the block, the checksum field counted as spaces (read and written alike). */
export function checksum(block: Buffer): number {
  let sum = 8 * 32; // the checksum field itself counts as spaces
  for (let i = 0; i < 148; i++) sum += block[i]!;
  for (let i = 156; i < BLOCK; i++) sum += block[i]!;
  return sum;
}

function paxRecords(name: string, linkname: string | undefined): Buffer {
  let out = record('path', name);
  if (linkname) out += record('linkpath', linkname);
  return Buffer.from(out, 'utf8');
}

/** `<len> key=value\n`, where len counts its own digits. */
function record(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const len = Buffer.byteLength(body);
  let digits = String(len).length;
  if (len + digits >= 10 ** digits) digits++;
  return `${len + digits}${body}`;
}
