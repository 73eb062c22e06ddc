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
const { closeSync, openSync, writeSync } = require('node:fs');
const { hashRange } = require('./range-read.cjs');

const buf = Buffer.allocUnsafeSlow(1 << 20);

function run(msg) {
  const src = openSync(msg.file, 'r');
  try {
    if (msg.op === 'hash') return msg.ranges.map((r) => hashRange(src, r.at, r.size, buf));
    return msg.ranges.map((r) => {
      const dst = openSync(r.to, 'wx', 0o666);
      try {
        return hashRange(src, r.at, r.size, buf, (piece) => {
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
