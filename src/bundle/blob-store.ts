import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KbundleError } from '../util/errors.js';
import { digestFile, digestOf, digestStream, hexOf, type Digested } from './digest.js';
import { BundleExit } from './exit-codes.js';

/** Where a blob's bytes are: in memory (JSON, signatures) or in a file (sources, modules). */
export type BlobSource = { data: Buffer } | { file: string };

/**
 * Content-addressed staging for one bundle write: a blob is known by digest
 * only, so storing the same bytes twice (one source for many targets, one
 * module shared by kernels) keeps one copy. Files given by path are not
 * copied; the tar writer re-verifies them when it streams them.
 */
export class BlobStore {
  private readonly blobs = new Map<string, Digested & BlobSource>();
  private counter = 0;
  private constructor(readonly dir: string) {}

  static async create(parent: string): Promise<BlobStore> {
    return new BlobStore(await mkdtemp(join(parent, '.kbundle-blobs-')));
  }

  putBytes(data: Uint8Array): Digested {
    const d = digestOf(data);
    if (!this.blobs.has(d.digest)) this.blobs.set(d.digest, { ...d, data: Buffer.from(data) });
    return d;
  }

  async putFile(file: string): Promise<Digested> {
    const d = await digestFile(file);
    if (!this.blobs.has(d.digest)) this.blobs.set(d.digest, { ...d, file });
    return d;
  }

  /** Writes the stream into the store's directory, hashing it on the way. */
  async putStream(stream: Readable): Promise<Digested> {
    const file = join(this.dir, `stream-${this.counter++}`);
    const tee = new PassThrough({ highWaterMark: 1 << 20 });
    const hashing = digestStream(tee);
    await Promise.all([pipeline(stream, tee, createWriteStream(file)), hashing]);
    const d = await hashing;
    if (!this.blobs.has(d.digest)) this.blobs.set(d.digest, { ...d, file });
    return d;
  }

  /** Adopts a file already known to hold `expected` (e.g. a blob copied out of a verified bundle). */
  adopt(file: string, expected: Digested): void {
    hexOf(expected.digest);
    if (!this.blobs.has(expected.digest)) this.blobs.set(expected.digest, { ...expected, file });
  }

  get(digest: string): Digested & BlobSource {
    const b = this.blobs.get(digest);
    if (!b) throw new KbundleError(`internal: blob ${digest} is referenced but was never stored`, BundleExit.BadLayout);
    return b;
  }

  has(digest: string): boolean {
    return this.blobs.has(digest);
  }

  bytes(digest: string): Buffer {
    const b = this.get(digest);
    if (!('data' in b)) throw new KbundleError(`internal: blob ${digest} is not held in memory`, BundleExit.BadLayout);
    return b.data;
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
