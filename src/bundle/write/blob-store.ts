import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { KbundleError } from '../../util/errors.js';
import { digestOf, hexOf, type Digested } from '../model/digest.js';
import { identityOfPath, type FileIdentity } from '../../util/file-identity.js';
import { ExitCode } from '../../util/exit-codes.js';

/**
 * Where a blob's bytes are: in memory (JSON, signatures) or in a file
 * (sources, modules) together with the identity the file had when it was
 * hashed, which the tar writer checks instead of hashing it again.
 */
export type BlobSource = { data: Buffer } | { file: string; identity: FileIdentity };

/**
 * Content-addressed staging for one bundle write: a blob is known by digest
 * only, so storing the same bytes twice (one source for many targets, one
 * module shared by kernels) keeps one copy. Files given by path are not
 * copied.
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

  /** A path in the store's directory for a blob about to be written (then `adopt`ed). */
  reserve(): string {
    return join(this.dir, `blob-${this.counter++}`);
  }

  /**
   * Adopts a file known to hold `expected` (hashed by the caller, or copied
   * out of a verified bundle). `identity` is the file's as it was hashed;
   * without it, the file's identity now.
   */
  adopt(file: string, expected: Digested, identity: FileIdentity = identityOfPath(file)): void {
    hexOf(expected.digest);
    if (BigInt(expected.size) !== identity.size) {
      throw new KbundleError(`internal: ${file} is ${identity.size} bytes, not the ${expected.size} hashed`, ExitCode.DigestMismatch);
    }
    if (!this.blobs.has(expected.digest)) this.blobs.set(expected.digest, { digest: expected.digest, size: expected.size, file, identity });
  }

  get(digest: string): Digested & BlobSource {
    const b = this.blobs.get(digest);
    if (!b) throw new KbundleError(`internal: blob ${digest} is referenced but was never stored`, ExitCode.BadLayout);
    return b;
  }

  has(digest: string): boolean {
    return this.blobs.has(digest);
  }

  bytes(digest: string): Buffer {
    const b = this.get(digest);
    if (!('data' in b)) throw new KbundleError(`internal: blob ${digest} is not held in memory`, ExitCode.BadLayout);
    return b.data;
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
