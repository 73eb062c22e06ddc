// Worker thread for reading a bundle (driven by range-thread.ts).
//
// Plain CommonJS for the same reason as zstd-worker.cjs: a worker starts from
// a file path, which must exist both under dist/ and under vitest's sources.
//
// It does I/O and hashing only and decides nothing: `hash` answers the sha256
// and byte count of each byte range of a file; `copy` copies each range into
// its own new file (`wx`: never over an existing one) and answers what it
// copied. The caller compares the answers with what the signed index
// declares, and renames or removes the copies.
'use strict';
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { closeSync, openSync, readSync, writeSync } = require('node:fs');

const buf = Buffer.allocUnsafeSlow(1 << 20);

/** Reads [at, at+size) of `fd` through `buf`, calling `each` per piece; stops early at end of file. */
function readRange(fd, at, size, each) {
  const hash = createHash('sha256');
  let done = 0;
  while (done < size) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, size - done), at + done);
    if (n === 0) break;
    const piece = buf.subarray(0, n);
    hash.update(piece);
    each(piece);
    done += n;
  }
  return { hex: hash.digest('hex'), size: done };
}

function run(msg) {
  const src = openSync(msg.file, 'r');
  try {
    if (msg.op === 'hash') return msg.ranges.map((r) => readRange(src, r.at, r.size, () => undefined));
    return msg.ranges.map((r) => {
      const dst = openSync(r.to, 'wx', 0o666);
      try {
        return readRange(src, r.at, r.size, (piece) => {
          for (let off = 0; off < piece.length; ) off += writeSync(dst, piece, off, piece.length - off);
        });
      } finally {
        closeSync(dst);
      }
    });
  } finally {
    closeSync(src);
  }
}

parentPort.on('message', (msg) => {
  try {
    parentPort.postMessage({ id: msg.id, ok: true, results: run(msg) });
  } catch (e) {
    parentPort.postMessage({ id: msg.id, ok: false, message: e.message, code: e.code });
  }
});
