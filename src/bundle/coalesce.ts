/**
 * Joins small chunks into ~1 MiB ones. The source tar arrives as a 512-byte
 * header plus one buffer per file; each chunk handed to zstd-napi and to the
 * hashes is a native call with fixed overhead, which dominated packing
 * sources of many small files. zstd's output does not depend on how its
 * input is chunked (dependencies.md §2.4), so the bytes stay the same.
 */
import { Transform, type TransformCallback } from 'node:stream';

export function coalesce(minBytes = 1 << 20): Transform {
  let parts: Buffer[] = [];
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
      parts.push(chunk);
      size += chunk.length;
      if (size >= minBytes) {
        const out = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
        parts = [];
        size = 0;
        done(null, out);
        return;
      }
      done();
    },
    flush(done: TransformCallback) {
      done(null, size ? Buffer.concat(parts, size) : undefined);
    },
  });
}
