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
// The decompression step the decompressing thread runs too (zstd-step.cjs: one copy, loaded by both).
const { decompressStep } = require('./zstd-step.cjs') as typeof import('./zstd-step.cjs');
const zstdNapiVersion = (require('zstd-napi/package.json') as { version: string }).version;

export const DEFAULT_ZSTD_LEVEL = 19;

/**
 * Everything the compressed bytes depend on. Output differs between libzstd
 * builds, between zstd-napi's one-shot and streaming APIs, and with the frame
 * flags (docs/dependencies-choice.md, "zstd determinism"), so each of these is pinned here and recorded
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
 * The worker in read/unzstd-worker.cjs runs the same step (zstd-step.cjs)
 * with the same limit; its loop differs only in waiting for output buffers to
 * come back from the main thread.
 */
export class ZstdDecoder {
  private readonly dctx = new binding.DCtx();
  private readonly out = Buffer.allocUnsafeSlow(256 << 10);
  private inFrame = false;

  constructor(
    limit: number,
    private readonly what: string,
  ) {
    this.state = { produced: 0, limit };
  }

  private readonly state: { produced: number; limit: number };

  /** `each` gets views of a reused buffer, valid only during the call. */
  decode(input: Uint8Array, each: (piece: Buffer) => void): void {
    let src = input;
    for (;;) {
      let r: [number, number, number];
      try {
        r = decompressStep(this.dctx, this.out, src, this.state);
      } catch (e) {
        const err = e as Error & { kind?: string };
        if (err.kind === 'limit') throw new KbundleError(`${this.what}: decompressed output exceeds the declared ${this.state.limit} bytes`, ExitCode.LimitExceeded);
        throw new KbundleError(`${this.what}: not valid zstd data (${err.message})`, ExitCode.DigestMismatch);
      }
      const [remaining, produced, consumed] = r;
      if (produced > 0) each(this.out.subarray(0, produced));
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
