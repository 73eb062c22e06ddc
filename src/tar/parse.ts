import { checksum } from './ustar.js';

/**
 * A synchronous tar reader: bytes are pushed in with `feed`, and entries
 * come out through the sink's calls before `feed` returns. Extraction needs
 * nothing else, and a stream-based reader (tar-stream) made unpacking a
 * source of many small files about twice as slow: a stream, a promise and
 * several buffers per entry, against one header decode and a few writes
 * here (docs/performance.md, unpack).
 *
 * It reads what tar-stream reads, the same way, so extraction accepts the
 * same archives: POSIX ustar and GNU headers with checksums, GNU long names
 * (`L`, `K`), pax headers (`path`, `linkpath`, `size`; global ones apply to
 * every later entry), base-256 sizes, an old-style trailing `/` meaning a
 * directory, zero blocks skipped; a negative or unreadable size is refused. Entry types keep tar-stream's names, which
 * are what the extraction messages show.
 */

export interface TarHeader {
  name: string;
  type: TarType;
  size: number;
  mode: number;
  mtime: Date;
  linkname: string | null;
}

export type TarType =
  | 'file'
  | 'link'
  | 'symlink'
  | 'character-device'
  | 'block-device'
  | 'directory'
  | 'fifo'
  | 'contiguous-file'
  | 'pax-header'
  | 'pax-global-header'
  | 'gnu-long-link-path'
  | 'gnu-long-path'
  | 'unknown';

export interface TarSink {
  /** An entry begins; its `size` bytes follow through `data`, then `end`. */
  entry(h: TarHeader): void;
  /** A piece of the current entry's bytes; only valid during the call. */
  data(piece: Buffer): void;
  end(): void;
}

/** A malformed or truncated archive (the message says which). */
export class TarFormatError extends Error {}

/** The words bundle readers use for a TarFormatError (exit 32). */
export function describeTarError(e: Error): string {
  return /unexpected end/i.test(e.message) ? 'truncated archive (unexpected end of data)' : `not a valid tar archive (${e.message})`;
}

const MAX_META = 4 << 20;

type State = 'header' | 'data' | 'meta' | 'padding';

export class TarParser {
  private state: State = 'header';
  private readonly header = Buffer.alloc(512);
  private headerFill = 0;
  private remaining = 0;
  private padding = 0;
  private meta: Buffer | null = null;
  private metaFill = 0;
  private metaType: TarType = 'unknown';
  private pax: Record<string, string> | null = null;
  private paxGlobal: Record<string, string> | null = null;
  private longPath: string | null = null;
  private longLinkPath: string | null = null;

  constructor(private readonly sink: TarSink) {}

  feed(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 'data') {
        const n = Math.min(this.remaining, chunk.length - i);
        this.sink.data(chunk.subarray(i, i + n));
        i += n;
        this.remaining -= n;
        if (this.remaining === 0) this.endEntry();
      } else if (this.state === 'meta') {
        const n = Math.min(this.remaining, chunk.length - i);
        chunk.copy(this.meta!, this.metaFill, i, i + n);
        this.metaFill += n;
        i += n;
        this.remaining -= n;
        if (this.remaining === 0) this.endMeta();
      } else if (this.state === 'padding') {
        const n = Math.min(this.padding, chunk.length - i);
        i += n;
        this.padding -= n;
        if (this.padding === 0) this.state = 'header';
      } else {
        const n = Math.min(512 - this.headerFill, chunk.length - i);
        chunk.copy(this.header, this.headerFill, i, i + n);
        this.headerFill += n;
        i += n;
        if (this.headerFill === 512) {
          this.headerFill = 0;
          this.onHeader();
        }
      }
    }
  }

  /** Call at end of input: throws unless it ended between entries. */
  finish(): void {
    if (this.state !== 'header' || this.headerFill !== 0) throw new TarFormatError('Unexpected end of data');
  }

  private onHeader(): void {
    const h = decodeHeader(this.header);
    if (h === null) return;
    if (!(h.size >= 0)) throw new TarFormatError('Invalid header');
    this.padding = (512 - (h.size % 512)) % 512;
    if (h.type === 'pax-header' || h.type === 'pax-global-header' || h.type === 'gnu-long-path' || h.type === 'gnu-long-link-path') {
      if (h.size > MAX_META) throw new TarFormatError('Long header is too big');
      this.meta = Buffer.alloc(h.size);
      this.metaFill = 0;
      this.metaType = h.type;
      this.remaining = h.size;
      this.state = h.size > 0 ? 'meta' : 'header';
      if (h.size === 0) this.endMeta();
      return;
    }
    if (this.longPath !== null) h.name = this.longPath;
    if (this.longLinkPath !== null) h.linkname = this.longLinkPath;
    this.longPath = this.longLinkPath = null;
    if (this.pax) {
      if (this.pax.path) h.name = this.pax.path;
      if (this.pax.linkpath) h.linkname = this.pax.linkpath;
      if (this.pax.size) h.size = parseInt(this.pax.size, 10);
      this.pax = null;
      if (!(h.size >= 0)) throw new TarFormatError('Invalid header');
      this.padding = (512 - (h.size % 512)) % 512;
    }
    this.sink.entry(h);
    this.remaining = h.size;
    if (h.size === 0) this.endEntry();
    else this.state = 'data';
  }

  private endEntry(): void {
    this.sink.end();
    this.state = this.padding > 0 ? 'padding' : 'header';
  }

  private endMeta(): void {
    const buf = this.meta!;
    this.meta = null;
    if (this.metaType === 'gnu-long-path') this.longPath = cString(buf, 0, buf.length);
    else if (this.metaType === 'gnu-long-link-path') this.longLinkPath = cString(buf, 0, buf.length);
    else if (this.metaType === 'pax-global-header') this.paxGlobal = { ...this.paxGlobal, ...decodePax(buf) };
    else this.pax = { ...this.paxGlobal, ...decodePax(buf) };
    this.state = this.padding > 0 ? 'padding' : 'header';
  }
}

/** One 512-byte header; null for an all-zero (end-of-archive or padding) block; throws TarFormatError on a bad checksum or an unknown format. */
export function decodeHeader(b: Buffer): TarHeader | null {
  const sum = checksum(b);
  // Only the checksum field's assumed spaces: every other byte is zero.
  if (sum === 8 * 0x20) return null;
  if (sum !== octal(b, 148, 8)) throw new TarFormatError('Invalid tar header. Maybe the tar is corrupted or it needs to be gunzipped?');
  const flag = b[156] === 0 ? 0 : b[156]! - 48;
  let name = cString(b, 0, 100);
  const ustar = b.toString('latin1', 257, 263) === 'ustar\0';
  const gnu = b.toString('latin1', 257, 263) === 'ustar ' && b.toString('latin1', 263, 265) === ' \0';
  if (ustar) {
    if (b[345]) name = `${cString(b, 345, 155)}/${name}`;
  } else if (!gnu) throw new TarFormatError('Invalid tar header: unknown format.');
  let type = typeOf(flag);
  if (flag === 0 && name.endsWith('/')) type = 'directory';
  return {
    name,
    type,
    size: octal(b, 124, 12),
    mode: octal(b, 100, 8),
    mtime: new Date(1000 * octal(b, 136, 12)),
    linkname: b[157] === 0 ? null : cString(b, 157, 100),
  };
}

function typeOf(flag: number): TarType {
  switch (flag) {
    case 0:
      return 'file';
    case 1:
      return 'link';
    case 2:
      return 'symlink';
    case 3:
      return 'character-device';
    case 4:
      return 'block-device';
    case 5:
      return 'directory';
    case 6:
      return 'fifo';
    case 7:
      return 'contiguous-file';
    case 72:
      return 'pax-header';
    case 55:
      return 'pax-global-header';
    case 27:
      return 'gnu-long-link-path';
    case 28:
    case 30:
      return 'gnu-long-path';
    default:
      return 'unknown';
  }
}

/** Bytes up to the first NUL within the field, as UTF-8. */
function cString(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end === -1 || end > off + len ? off + len : end);
}

/**
 * An octal field (leading spaces and NULs skipped, read up to the first
 * non-digit), or base-256 after a 0x80 byte; a negative (0xff) or other
 * top-bit value is NaN, which the size check rejects.
 */
function octal(b: Buffer, off: number, len: number): number {
  const end = off + len;
  if (b[off]! & 0x80) {
    if (b[off] !== 0x80) return NaN;
    let n = 0;
    for (let i = off + 1; i < end; i++) n = n * 256 + b[i]!;
    return n;
  }
  let i = off;
  while (i < end && b[i] === 0x20) i++;
  while (i < end && b[i] === 0) i++;
  if (i === end || b[i] === 0x20) return 0;
  if (!(b[i]! >= 0x30 && b[i]! <= 0x37)) return NaN;
  let n = 0;
  for (; i < end && b[i]! >= 0x30 && b[i]! <= 0x37; i++) n = n * 8 + (b[i]! - 0x30);
  return n;
}

/** pax `len key=value\n` records, read as tar-stream reads them (stops at the first malformed one). */
export function decodePax(buf: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < buf.length) {
    const sp = buf.indexOf(0x20, at);
    const len = parseInt(buf.toString('utf8', at, sp === -1 ? buf.length : sp), 10);
    if (!len || sp === -1) return out;
    const rec = buf.toString('utf8', sp + 1, at + len - 1);
    const eq = rec.indexOf('=');
    if (eq === -1) return out;
    out[rec.slice(0, eq)] = rec.slice(eq + 1);
    at += len;
  }
  return out;
}
