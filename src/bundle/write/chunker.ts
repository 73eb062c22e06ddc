/**
 * Gathers pieces of any size into fixed-size buffers it allocates itself.
 * The tar writer yields a 512-byte header, then a file's bytes, and so on;
 * every chunk handed to zstd, to a hash or to write(2) is a native call with
 * a fixed cost, which dominated packing sources of many small files, and a
 * chunk the Chunker made can be transferred to a worker thread (it owns its
 * whole ArrayBuffer) while the piece it was copied from is reused. zstd's
 * output does not depend on how its input is chunked (docs/dependencies-choice.md),
 * so the bytes written stay the same.
 */
export class Chunker {
  private buf: Buffer;
  private used = 0;

  constructor(private readonly chunkSize = 1 << 20) {
    this.buf = takeBuffer(chunkSize);
  }

  /** Copies `piece` in; returns the chunks it filled (possibly none). `piece` may be reused by the caller afterwards. */
  push(piece: Uint8Array): Buffer[] {
    const full: Buffer[] = [];
    let off = 0;
    while (off < piece.length) {
      const n = Math.min(piece.length - off, this.chunkSize - this.used);
      this.buf.set(piece.subarray(off, off + n), this.used);
      this.used += n;
      off += n;
      if (this.used === this.chunkSize) {
        full.push(this.buf);
        this.buf = takeBuffer(this.chunkSize);
        this.used = 0;
      }
    }
    return full;
  }

  /** The partly filled last chunk, if any (a view of a buffer the Chunker no longer uses). */
  flush(): Buffer | null {
    if (this.used === 0) return null;
    const last = this.buf.subarray(0, this.used);
    this.buf = takeBuffer(this.chunkSize);
    this.used = 0;
    return last;
  }
}

const made = new WeakSet<ArrayBufferLike>();
/**
 * Chunk memory is reused once consumed (written, or handed back by the
 * worker thread): a fresh 1 MiB buffer per chunk left hundreds of MB of
 * garbage for each thread's collector (external memory is collected
 * lazily), which showed as peak RSS.
 */
const free: ArrayBuffer[] = [];
const MAX_FREE = 16;

/** A buffer of `size` bytes (contents undefined) that is no one else's: reused or new. */
export function takeBuffer(size: number): Buffer {
  const i = free.findIndex((ab) => ab.byteLength === size);
  if (i >= 0) return Buffer.from(free.splice(i, 1)[0]!);
  const b = Buffer.allocUnsafeSlow(size);
  made.add(b.buffer);
  return b;
}

/** Takes back a chunk's memory for reuse; the caller must not touch it afterwards. */
export function recycle(ab: ArrayBufferLike): void {
  made.add(ab);
  if (free.length < MAX_FREE) free.push(ab as ArrayBuffer);
}

/** True for a chunk the Chunker made: its memory is no one else's and may be transferred to another thread. */
export function isTransferable(chunk: Buffer): boolean {
  return chunk.byteOffset === 0 && made.has(chunk.buffer);
}
