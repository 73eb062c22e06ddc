import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** One archive member as the header walk saw it. */
export interface WalkedEntry {
  /** Name as tar readers decode it (pax `path`, else ustar prefix + name). */
  name: string;
  type: 'file' | 'directory';
  size: number;
  /** Where the member's bytes start in the file. */
  dataAt: number;
}

export interface ArchiveWalk {
  entries: WalkedEntry[];
  /**
   * True when the walk understood the whole archive: every header a valid
   * POSIX ustar one (checksum, magic) of a regular file or directory,
   * optionally after a pax header that sets at most its path, every member's
   * bytes inside the file, and nothing but zeros after the end marker.
   * Anything else (GNU long names, links, a bad checksum, a truncated
   * member, trailing data) ends the walk with `complete: false`, and the
   * caller reads the archive with the streaming parser instead, which gives
   * the established messages for malformed input.
   */
  complete: boolean;
}

const MAX_PAX = 1 << 20;

/**
 * Walks the tar headers of `file` with positioned reads (a few hundred bytes
 * per member, none of the members' bytes), so blobs can be hashed or copied
 * straight from their offsets, and by more than one thread.
 */
export function walkArchive(file: string): ArchiveWalk {
  const fd = openSync(file, 'r');
  try {
    return walk(fd, fstatSync(fd).size);
  } finally {
    closeSync(fd);
  }
}

function walk(fd: number, fileSize: number): ArchiveWalk {
  const entries: WalkedEntry[] = [];
  const stop = (): ArchiveWalk => ({ entries, complete: false });
  const h = Buffer.alloc(512);
  let pos = 0;
  let paxPath: string | null = null;
  let afterPax = false;
  for (;;) {
    if (readSync(fd, h, 0, 512, pos) !== 512) return stop();
    if (isZeroBlock(h)) return afterPax || !zerosToEnd(fd, pos, fileSize) ? stop() : { entries, complete: true };
    if (!checksumOk(h) || h.toString('latin1', 257, 265) !== 'ustar\x0000') return stop();
    const size = headerSize(h);
    if (size === null) return stop();
    const dataAt = pos + 512;
    if (dataAt + size > fileSize) return stop();
    pos = dataAt + Math.ceil(size / 512) * 512;
    const flag = h[156]!;
    if (flag === 0x78 /* x */) {
      if (afterPax || size > MAX_PAX) return stop();
      const pax = Buffer.alloc(size);
      if (readSync(fd, pax, 0, size, dataAt) !== size) return stop();
      const rec = parsePax(pax);
      if (rec === null || rec.has('size') || rec.has('linkpath')) return stop();
      // An empty path leaves the header's name, as tar readers do.
      paxPath = rec.get('path') || null;
      afterPax = true;
      continue;
    }
    const name = paxPath ?? headerName(h);
    paxPath = null;
    afterPax = false;
    let type: WalkedEntry['type'];
    if (flag === 0x35 /* 5 */) type = 'directory';
    else if (flag === 0x30 || flag === 0) type = name.endsWith('/') ? 'directory' : 'file';
    else return stop();
    if (type === 'directory' && name === '') return stop();
    entries.push({ name, type, size, dataAt });
  }
}

function isZeroBlock(h: Buffer): boolean {
  for (let i = 0; i < 512; i++) if (h[i] !== 0) return false;
  return true;
}

function zerosToEnd(fd: number, from: number, fileSize: number): boolean {
  // A reader that carries on past the end marker would see what follows; only zero padding is ignorable.
  if (fileSize - from > 1 << 20) return false;
  const rest = Buffer.alloc(fileSize - from);
  if (readSync(fd, rest, 0, rest.length, from) !== rest.length) return false;
  return rest.every((b) => b === 0);
}

function checksumOk(h: Buffer): boolean {
  let sum = 8 * 0x20;
  for (let i = 0; i < 148; i++) sum += h[i]!;
  for (let i = 156; i < 512; i++) sum += h[i]!;
  const text = h.toString('latin1', 148, 156).replace(/[\0 ]+$/, '').trim();
  return /^[0-7]+$/.test(text) && parseInt(text, 8) === sum;
}

/** `len key=value\n` records; null if any record is malformed. */
function parsePax(b: Buffer): Map<string, string> | null {
  const out = new Map<string, string>();
  let at = 0;
  while (at < b.length) {
    const sp = b.indexOf(0x20, at);
    if (sp === -1) return null;
    const lenText = b.toString('latin1', at, sp);
    if (!/^[1-9][0-9]*$/.test(lenText)) return null;
    const end = at + Number(lenText);
    if (end > b.length || b[end - 1] !== 0x0a) return null;
    const rec = b.toString('utf8', sp + 1, end - 1);
    const eq = rec.indexOf('=');
    if (eq <= 0) return null;
    out.set(rec.slice(0, eq), rec.slice(eq + 1));
    at = end;
  }
  return out;
}

function headerName(h: Buffer): string {
  const str = (off: number, len: number) => {
    const end = h.indexOf(0, off);
    return h.toString('utf8', off, end === -1 || end > off + len ? off + len : end);
  };
  const name = str(0, 100);
  const prefix = h.toString('latin1', 257, 262) === 'ustar' ? str(345, 155) : '';
  return prefix ? `${prefix}/${name}` : name;
}

function headerSize(h: Buffer): number | null {
  if (h[124]! & 0x80) {
    let n = 0;
    for (let i = 125; i < 136; i++) n = n * 256 + h[i]!;
    return Number.isSafeInteger(n) ? n : null;
  }
  const text = h.toString('latin1', 124, 136).replace(/[\0 ]+$/, '').trim();
  return /^[0-7]+$/.test(text) ? parseInt(text, 8) : text === '' ? 0 : null;
}
