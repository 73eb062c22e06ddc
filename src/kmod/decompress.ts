/**
 * Decompression of kernel modules and kernel metadata files, chosen by magic
 * bytes rather than file name (a mislabelled file still reads correctly).
 */
import { gunzipSync } from 'node:zlib';
import { createRequire } from 'node:module';
import { loadExeca } from '../util/execa.js';
import { KbundleError } from '../util/errors.js';

// zstd-napi is CommonJS; createRequire keeps the import working under NodeNext ESM.
const zstd = createRequire(import.meta.url)('zstd-napi') as typeof import('zstd-napi');

export type CompressionFormat = 'none' | 'gzip' | 'xz' | 'zstd';

/** Bigger than any real module (the largest Debian .ko is ~100 MiB with debug info); guards against decompression bombs. */
export const MAX_DECOMPRESSED = 1 << 30;

export function detectFormat(buf: Buffer): CompressionFormat {
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) return 'gzip';
  if (buf.length >= 6 && buf.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (buf.length >= 4 && buf.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

export async function decompress(buf: Buffer, what = 'data'): Promise<Buffer> {
  const format = detectFormat(buf);
  try {
    switch (format) {
      case 'none':
        return buf;
      case 'gzip':
        return gunzipSync(buf, { maxOutputLength: MAX_DECOMPRESSED });
      case 'zstd': {
        const out = zstd.decompress(buf);
        if (out.length > MAX_DECOMPRESSED) throw new Error('decompressed size exceeds limit');
        return out;
      }
      case 'xz': {
        // No xz decoder ships with Node; the xz CLI is already a DKMS requirement.
        // stripFinalNewline must stay off: a signed module ends in "appended~\n".
        const r = await (await loadExeca())('xz', ['-dc'], { input: buf, encoding: 'buffer', maxBuffer: MAX_DECOMPRESSED, reject: false, stripFinalNewline: false });
        if (r.exitCode !== 0) throw new Error(Buffer.from(r.stderr).toString().trim() || `xz exited ${r.exitCode}`);
        return Buffer.from(r.stdout);
      }
    }
  } catch (e) {
    throw new KbundleError(`cannot decompress ${what} (${format}): ${(e as Error).message}`);
  }
}
