import { createRequire } from 'node:module';
import { KbundleError } from '../util/errors.js';
import { BundleExit } from './exit-codes.js';
// zstd-napi is CommonJS with a native binding; createRequire avoids relying on
// Node's static detection of its named exports.
const require = createRequire(import.meta.url);
const zstd = require('zstd-napi');
const binding = require('zstd-napi/binding');
const zstdNapiVersion = require('zstd-napi/package.json').version;
export const DEFAULT_ZSTD_LEVEL = 19;
export function zstdParameters(level = DEFAULT_ZSTD_LEVEL) {
    if (!Number.isInteger(level) || level < 1 || level > 22) {
        throw new KbundleError(`zstd level must be an integer 1..22, got ${level}`, BundleExit.BadSpec);
    }
    return {
        implementation: 'zstd-napi',
        implementationVersion: zstdNapiVersion,
        libzstdVersion: binding.versionString(),
        api: 'CompressStream',
        level,
        checksumFlag: true,
        contentSizeFlag: false,
        nbWorkers: 0,
    };
}
/** Deterministic streaming compressor: same input bytes + same level → same output, whatever the chunking. */
export function compressStream(level = DEFAULT_ZSTD_LEVEL) {
    const p = zstdParameters(level);
    return new zstd.CompressStream({
        compressionLevel: p.level,
        checksumFlag: p.checksumFlag,
        contentSizeFlag: p.contentSizeFlag,
        nbWorkers: p.nbWorkers,
    });
}
/**
 * Decompressor that fails as soon as the output passes `maxOutput`. The
 * declared size comes from signed metadata, so a blob that expands beyond it
 * is hostile or corrupt; stopping inside the decompression loop (zstd-napi
 * pushes every output buffer of one input chunk synchronously) bounds the
 * memory, disk and CPU spent on it.
 */
export function decompressStream(opts) {
    return new BoundedDecompressStream(opts.maxOutput, opts.what ?? 'zstd stream');
}
class BoundedDecompressStream extends zstd.DecompressStream {
    limit;
    what;
    produced = 0;
    constructor(limit, what) {
        super();
        this.limit = limit;
        this.what = what;
    }
    push(chunk, encoding) {
        if (chunk !== null) {
            this.produced += chunk.length;
            // Thrown inside zstd-napi's try block, which hands it to the callback.
            if (this.produced > this.limit) {
                throw new KbundleError(`${this.what}: decompressed output exceeds the declared ${this.limit} bytes`, BundleExit.LimitExceeded);
            }
        }
        return super.push(chunk, encoding);
    }
    _transform(chunk, encoding, done) {
        super._transform(chunk, encoding, (err) => done(this.explain(err)));
    }
    _flush(done) {
        super._flush((err) => done(this.explain(err)));
    }
    explain(err) {
        if (!err || err instanceof KbundleError)
            return err;
        return new KbundleError(`${this.what}: not valid zstd data (${err.message})`, BundleExit.DigestMismatch);
    }
}
