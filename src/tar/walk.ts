import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { decodeHeader, decodePax, TarParser, type TarHeader, type TarSink } from './parse.js';

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
   * caller reads the archive whole with parseArchive instead (any tar, and
   * the reader's messages for malformed input).
   */
  complete: boolean;
}

const MAX_PAX = 1 << 20;

/**
 * Walks the tar headers of `file` with positioned reads (a few hundred bytes
 * per member, none of the members' bytes), so blobs can be hashed or copied
 * straight from their offsets, and by more than one thread. Headers are
 * decoded as the extracting reader decodes them (parse.ts).
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
  const block = Buffer.alloc(512);
  let pos = 0;
  let paxPath: string | null = null;
  let afterPax = false;
  for (;;) {
    if (readSync(fd, block, 0, 512, pos) !== 512) return stop();
    let h: TarHeader | null;
    try {
      h = decodeHeader(block);
    } catch {
      return stop();
    }
    if (h === null) return afterPax || !zerosToEnd(fd, pos, fileSize) ? stop() : { entries, complete: true };
    // POSIX ustar only (a GNU header may come with long-name records this walk does not follow).
    if (block.toString('latin1', 257, 265) !== 'ustar\x0000' || !(h.size >= 0)) return stop();
    const dataAt = pos + 512;
    if (dataAt + h.size > fileSize) return stop();
    pos = dataAt + Math.ceil(h.size / 512) * 512;
    if (h.type === 'pax-header') {
      if (afterPax || h.size > MAX_PAX) return stop();
      const pax = Buffer.alloc(h.size);
      if (readSync(fd, pax, 0, h.size, dataAt) !== h.size) return stop();
      const rec = decodePax(pax);
      if ('size' in rec || 'linkpath' in rec) return stop();
      // An empty path leaves the header's name, as tar readers do.
      paxPath = rec.path || null;
      afterPax = true;
      continue;
    }
    if (h.type !== 'file' && h.type !== 'directory') return stop();
    const name = paxPath ?? h.name;
    paxPath = null;
    afterPax = false;
    if (name === '') return stop();
    entries.push({ name, type: h.type, size: h.size, dataAt });
  }
}

function zerosToEnd(fd: number, from: number, fileSize: number): boolean {
  // A reader that carries on past the end marker would see what follows; only zero padding is ignorable.
  if (fileSize - from > 1 << 20) return false;
  const rest = Buffer.alloc(fileSize - from);
  if (readSync(fd, rest, 0, rest.length, from) !== rest.length) return false;
  return rest.every((b) => b === 0);
}

/**
 * Feeds all of `file` through TarParser into `sink`, for archives the walk
 * does not follow, yielding after each chunk so the caller can act on what
 * the sink saw (or stop reading). Throws TarFormatError for a malformed or
 * truncated archive.
 */
export async function* parseArchive(file: string, sink: TarSink): AsyncGenerator<void> {
  const parser = new TarParser(sink);
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    parser.feed(chunk);
    yield;
  }
  parser.finish();
}
