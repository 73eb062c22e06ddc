import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KbundleError } from '../util/errors.js';
import { digestFile, digestOf, digestStream, hexOf } from './digest.js';
import { BundleExit } from './exit-codes.js';
/**
 * Content-addressed staging for one bundle write: a blob is known by digest
 * only, so storing the same bytes twice (one source for many targets, one
 * module shared by kernels) keeps one copy. Files given by path are not
 * copied; the tar writer re-verifies them when it streams them.
 */
export class BlobStore {
    dir;
    blobs = new Map();
    counter = 0;
    constructor(dir) {
        this.dir = dir;
    }
    static async create(parent) {
        return new BlobStore(await mkdtemp(join(parent, '.kbundle-blobs-')));
    }
    putBytes(data) {
        const d = digestOf(data);
        if (!this.blobs.has(d.digest))
            this.blobs.set(d.digest, { ...d, data: Buffer.from(data) });
        return d;
    }
    async putFile(file) {
        const d = await digestFile(file);
        if (!this.blobs.has(d.digest))
            this.blobs.set(d.digest, { ...d, file });
        return d;
    }
    /** Writes the stream into the store's directory, hashing it on the way. */
    async putStream(stream) {
        const file = join(this.dir, `stream-${this.counter++}`);
        const tee = new PassThrough({ highWaterMark: 1 << 20 });
        const hashing = digestStream(tee);
        await Promise.all([pipeline(stream, tee, createWriteStream(file)), hashing]);
        const d = await hashing;
        if (!this.blobs.has(d.digest))
            this.blobs.set(d.digest, { ...d, file });
        return d;
    }
    /** Adopts a file already known to hold `expected` (e.g. a blob copied out of a verified bundle). */
    adopt(file, expected) {
        hexOf(expected.digest);
        if (!this.blobs.has(expected.digest))
            this.blobs.set(expected.digest, { ...expected, file });
    }
    get(digest) {
        const b = this.blobs.get(digest);
        if (!b)
            throw new KbundleError(`internal: blob ${digest} is referenced but was never stored`, BundleExit.BadLayout);
        return b;
    }
    has(digest) {
        return this.blobs.has(digest);
    }
    bytes(digest) {
        const b = this.get(digest);
        if (!('data' in b))
            throw new KbundleError(`internal: blob ${digest} is not held in memory`, BundleExit.BadLayout);
        return b.data;
    }
    async dispose() {
        await rm(this.dir, { recursive: true, force: true });
    }
}
