// The one loop that reads a byte range of a bundle file, shared by the main
// thread (scan.ts, reader.ts) and the reader thread (range-worker.cjs).
//
// Plain CommonJS, like the workers: a worker starts from a file path that must
// exist both under dist/ and under vitest's sources, and what it requires
// must too. The TypeScript side loads it with createRequire.
'use strict';
const { createHash } = require('node:crypto');
const { readSync } = require('node:fs');

/**
 * Reads [at, at+size) of `fd` through `buf`, one piece at a time; `next()`
 * answers a view of `buf` (valid until the next call) or null at the end of
 * the range or of the file (a range past the end comes back short: `done`
 * says how many bytes came).
 */
class RangeReader {
  constructor(fd, at, size, buf) {
    this.fd = fd;
    this.at = at;
    this.size = size;
    this.buf = buf;
    this.done = 0;
  }

  next() {
    if (this.done >= this.size) return null;
    const n = readSync(this.fd, this.buf, 0, Math.min(this.buf.length, this.size - this.done), this.at + this.done);
    if (n === 0) return null;
    this.done += n;
    return this.buf.subarray(0, n);
  }
}

/** sha256 (hex) and length of [at, at+size) of `fd`, handing each piece to `each` (if given) on the way. */
function hashRange(fd, at, size, buf, each) {
  const hash = createHash('sha256');
  const reader = new RangeReader(fd, at, size, buf);
  for (let piece; (piece = reader.next()) !== null; ) {
    hash.update(piece);
    if (each) each(piece);
  }
  return { hex: hash.digest('hex'), size: reader.done };
}

module.exports = { RangeReader, hashRange };
