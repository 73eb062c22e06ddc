import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fsyncPath, mkdirDurable, tempPathFor } from '../../util/atomic.js';
import { KbundleError } from '../../util/errors.js';
import { Chunker, recycle, takeBuffer } from './chunker.js';
import { identityOfStats, sameIdentity } from '../../util/file-identity.js';
import { tarEntryPieces, type FileContent, type ReproEntry } from '../../tar/repro-tar.js';
import { END_OF_ARCHIVE } from '../../tar/ustar.js';
import { ExitCode } from '../../util/exit-codes.js';

const CHUNK = 1 << 20;
/** Writes in flight at once; each holds one chunk. */
const WRITE_DEPTH = 4;
/** Bytes written between early flushes (see emit). */
const FLUSH_EVERY = 64 << 20;

/**
 * The bundle tar being written: a temp file beside the output, renamed into
 * place after fsync, so the output name either keeps its old content or
 * gets the complete new bundle, never a partial one.
 *
 * Entries are appended in parts (assemble.ts decides the order), which lets
 * writeBundle copy the module blobs in while the source is still being
 * compressed on the worker thread. Reads and writes of blob contents go
 * through libuv's thread pool, a few 1 MiB chunks in flight, so the kernel's
 * copying runs on whichever core is free rather than on this thread, which
 * meanwhile keeps the compressor fed; headers and small blobs are gathered
 * into chunks first.
 */
export class BundleFile {
  private readonly chunker = new Chunker(CHUNK);
  private readonly writes = new Set<Promise<void>>();
  private writeError: unknown = null;
  private pos = 0;
  private flushedAt = 0;
  private flushing: Promise<void> | null = null;
  private closed = false;
  /** Entry paths in the order written, for the order check in assemble.ts. */
  readonly written: string[] = [];
  private mtime: number | null = null;

  private constructor(
    readonly outFile: string,
    private readonly tmp: string,
    private readonly fh: FileHandle,
  ) {}

  static async create(outFile: string): Promise<BundleFile> {
    await mkdirDurable(dirname(outFile));
    const tmp = tempPathFor(outFile);
    return new BundleFile(outFile, tmp, await open(tmp, 'wx', 0o644));
  }

  /** Appends entries, in the order given, all with tar mtime `mtime` (one value per file). */
  async append(entries: ReproEntry[], mtime: number): Promise<void> {
    if (this.mtime !== null && this.mtime !== mtime) throw new Error(`internal: bundle tar mtime ${mtime} after ${this.mtime}`);
    this.mtime = mtime;
    for (const piece of tarEntryPieces(entries, { mtime })) {
      if (piece instanceof Uint8Array) {
        for (const chunk of this.chunker.push(piece)) await this.emit(chunk);
      } else {
        const pending = this.chunker.flush();
        if (pending) await this.emit(pending);
        await this.copy(piece);
      }
    }
    for (const e of entries) this.written.push(e.path);
  }

  /** Ends the archive, makes it durable and renames it to the output name. */
  async commit(): Promise<{ size: number }> {
    for (const chunk of this.chunker.push(END_OF_ARCHIVE)) await this.emit(chunk);
    const last = this.chunker.flush();
    if (last) await this.emit(last);
    await this.drain();
    await this.flushing;
    if (this.writeError) throw this.writeError;
    await this.fh.sync();
    this.closed = true;
    await this.fh.close();
    await rename(this.tmp, this.outFile);
    await fsyncPath(dirname(this.outFile));
    return { size: this.pos };
  }

  /** Removes the temp file; the output name is untouched. Safe after a failed append or commit. */
  async abort(): Promise<void> {
    await Promise.allSettled([...this.writes, this.flushing]);
    if (!this.closed) {
      this.closed = true;
      await this.fh.close().catch(() => undefined);
    }
    await rm(this.tmp, { force: true });
  }

  /**
   * Copies a blob file's bytes. It was hashed when it was stored; its
   * identity (device, inode, size, mtime, ctime) now must be what it was
   * then, and exactly `size` bytes must be read, or the bundle fails.
   */
  private async copy(c: FileContent): Promise<void> {
    const changed = (how: string) => new KbundleError(`${c.file} ${how}`, ExitCode.DigestMismatch);
    const src = await open(c.file, 'r');
    try {
      if (c.identity && !sameIdentity(identityOfStats(await src.stat({ bigint: true })), c.identity)) throw changed('changed between hashing and packing');
      let done = 0;
      while (done < c.size) {
        const buf = takeBuffer(CHUNK);
        const { bytesRead } = await src.read(buf, 0, Math.min(CHUNK, c.size - done), done);
        if (bytesRead === 0) {
          recycle(buf.buffer);
          throw changed(`shrank below ${c.size} bytes while being packed`);
        }
        done += bytesRead;
        await this.emit(buf.subarray(0, bytesRead));
      }
      const probe = Buffer.alloc(1);
      if ((await src.read(probe, 0, 1, done)).bytesRead !== 0) throw changed(`grew beyond ${c.size} bytes while being packed`);
    } finally {
      await src.close();
    }
  }

  /**
   * Starts writing a chunk at its offset; the chunk's memory goes back to
   * the pool when the write is done. Waits only when WRITE_DEPTH writes are
   * already in flight. The file is not hashed as it is written: that was
   * ~12 % of the packer's CPU on two cores, for a figure nothing in the
   * bundle depends on (the root digest names the bundle; `bundle build
   * --json` hashes the finished file for its `fileDigest`).
   */
  private async emit(chunk: Buffer): Promise<void> {
    if (this.writeError) throw this.writeError;
    const at = this.pos;
    this.pos += chunk.length;
    const w: Promise<void> = this.writeAt(chunk, at).then(
      () => {
        this.writes.delete(w);
        recycle(chunk.buffer);
      },
      (e: unknown) => {
        this.writes.delete(w);
        this.writeError ??= e;
      },
    );
    this.writes.add(w);
    // The file is fsynced before the rename; started early, in the
    // background, the disk writes most of it while the source is still
    // being compressed, and the final fsync has little left to wait for
    // (it was ~0.3 s of a 543 MB bundle's write on a VM disk).
    if (this.pos - this.flushedAt >= FLUSH_EVERY && !this.flushing) {
      this.flushedAt = this.pos;
      this.flushing = this.fh.datasync().then(
        () => {
          this.flushing = null;
        },
        (e: unknown) => {
          this.flushing = null;
          this.writeError ??= e;
        },
      );
    }
    if (this.writes.size >= WRITE_DEPTH) await Promise.race(this.writes);
    if (this.writeError) throw this.writeError;
  }

  private async writeAt(chunk: Buffer, at: number): Promise<void> {
    for (let off = 0; off < chunk.length; ) {
      const { bytesWritten } = await this.fh.write(chunk, off, chunk.length - off, at + off);
      off += bytesWritten;
    }
  }

  private async drain(): Promise<void> {
    await Promise.allSettled(this.writes);
    if (this.writeError) throw this.writeError;
  }
}
