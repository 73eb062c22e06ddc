import { createRequire } from 'node:module';
import type { Transform } from 'node:stream';
import type * as ZstdNapi from 'zstd-napi';
import { KbundleError } from '../../util/errors.js';
import { ExitCode } from '../../util/exit-codes.js';

// zstd-napi is CommonJS with a native binding; createRequire avoids relying on
// Node's static detection of its named exports.
const require = createRequire(import.meta.url);
const zstd = require('zstd-napi') as typeof ZstdNapi;
const binding = require('zstd-napi/binding') as {
  versionString(): string;
  DCtx: new () => { decompressStream(dst: Uint8Array, src: Uint8Array): [remaining: number, produced: number, consumed: number] };
};
const zstdNapiVersion = (require('zstd-napi/package.json') as { version: string }).version;

export const DEFAULT_ZSTD_LEVEL = 19;

/**
 * Everything the compressed bytes depend on. Output differs between libzstd
 * builds, between zstd-napi's one-shot and streaming APIs, and with the frame
 * flags (dependencies.md §2.4), so each of these is pinned here and recorded
 * in every package config, letting a rebuild tell "different tool" apart from
 * "different input".
 */
export interface ZstdParameters {
  implementation: 'zstd-napi';
  implementationVersion: string;
  libzstdVersion: string;
  api: 'CompressStream';
  level: number;
  checksumFlag: true;
  /** Streaming input has no known size, so no frame records it; pinned off so a future pledged-size path cannot change bytes silently. */
  contentSizeFlag: false;
  /** 0 = compress on the calling thread; worker framing differs from single-threaded framing. */
  nbWorkers: 0;
}

export function zstdParameters(level: number = DEFAULT_ZSTD_LEVEL): ZstdParameters {
  if (!Number.isInteger(level) || level < 1 || level > 22) {
    throw new KbundleError(`zstd level must be an integer 1..22, got ${level}`, ExitCode.BadSpec);
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
export function compressStream(level: number = DEFAULT_ZSTD_LEVEL): Transform {
  const p = zstdParameters(level);
  return new zstd.CompressStream({
    compressionLevel: p.level,
    checksumFlag: p.checksumFlag,
    contentSizeFlag: p.contentSizeFlag,
    nbWorkers: p.nbWorkers,
  });
}

/**
 * Decompressor that fails as soon as the output passes `limit`. The
 * declared size comes from signed metadata, so a blob that expands beyond it
 * is hostile or corrupt; stopping inside the decompression loop bounds the
 * memory, disk and CPU spent on it. Synchronous: `decode` hands each piece
 * of output to a callback before it returns, through one reused buffer, so
 * a source can be read, decompressed and extracted in one loop (a Transform
 * stream cost a buffer and a stream hop per 64 KiB; docs/performance.md).
 * The worker in unzstd-worker.cjs runs the same loop with the same limit.
 */
export class ZstdDecoder {
  private readonly dctx = new binding.DCtx();
  private readonly out = Buffer.allocUnsafeSlow(256 << 10);
  private produced = 0;
  private inFrame = false;

  constructor(
    private readonly limit: number,
    private readonly what: string,
  ) {}

  /** `each` gets views of a reused buffer, valid only during the call. */
  decode(input: Uint8Array, each: (piece: Buffer) => void): void {
    let src = input;
    for (;;) {
      let r: [number, number, number];
      try {
        r = this.dctx.decompressStream(this.out, src);
      } catch (e) {
        throw new KbundleError(`${this.what}: not valid zstd data (${(e as Error).message})`, ExitCode.DigestMismatch);
      }
      const [remaining, produced, consumed] = r;
      if (produced > 0) {
        this.produced += produced;
        if (this.produced > this.limit) throw new KbundleError(`${this.what}: decompressed output exceeds the declared ${this.limit} bytes`, ExitCode.LimitExceeded);
        each(this.out.subarray(0, produced));
      }
      src = src.subarray(consumed);
      // Done with this input once it is consumed and zstd has nothing more to flush (same test as zstd-napi's stream).
      if (src.length === 0 && (produced < this.out.length || remaining === 0)) {
        this.inFrame = remaining !== 0;
        return;
      }
    }
  }

  /** Throws if the input stopped inside a frame. */
  finish(): void {
    if (this.inFrame) throw new KbundleError(`${this.what}: not valid zstd data (Stream ended in middle of compressed data frame)`, ExitCode.DigestMismatch);
  }
}
