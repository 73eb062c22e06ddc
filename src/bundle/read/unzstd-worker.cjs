// Worker thread that decompresses a bundle's source blob (driven by
// unzstd-thread.ts) while the main thread extracts the tar it yields.
//
// Plain CommonJS for the same reason as zstd-worker.cjs. One job per worker:
// the compressed bytes are read from their offset in the bundle, zstd output
// is hashed (sha256) and handed over in buffers that are transferred, not
// copied, and come back once consumed; with all of them handed over the
// worker waits, which bounds the memory in flight. It stops as soon as the
// output passes `limit` (decompression bomb guard). It decides nothing: the
// caller compares the digest and size with the signed ones.
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { closeSync, openSync } = require('node:fs');
const { RangeReader } = require('./range-read.cjs');
const { decompressStep } = require('../model/zstd-step.cjs');

const binding = require(workerData.zstdBinding);
const { file, at, size, limit, bufSize, buffers } = workerData;

const free = [];
let wake = null;
parentPort.on('message', (m) => {
  free.push(m.buf);
  if (wake) wake();
});

async function take() {
  while (free.length === 0) await new Promise((r) => (wake = r));
  wake = null;
  return free.pop();
}

async function run() {
  for (let i = 0; i < buffers; i++) free.push(new ArrayBuffer(bufSize));
  const hash = createHash('sha256');
  const dctx = new binding.DCtx();
  const input = Buffer.allocUnsafe(64 << 10);
  const fd = openSync(file, 'r');
  const state = { produced: 0, limit };
  let inFrame = false;
  let out = Buffer.from(await take());
  let used = 0;
  const send = async () => {
    const piece = out.subarray(0, used);
    hash.update(piece);
    parentPort.postMessage({ op: 'data', buf: out.buffer, length: used }, [out.buffer]);
    out = Buffer.from(await take());
    used = 0;
  };
  try {
    const reader = new RangeReader(fd, at, size, input);
    for (let src; (src = reader.next()) !== null; ) {
      for (;;) {
        const [remaining, got, consumed] = decompressStep(dctx, out.subarray(used), src, state);
        used += got;
        src = src.subarray(consumed);
        if (used === out.length) await send();
        else if (src.length === 0) {
          inFrame = remaining !== 0;
          break;
        }
      }
    }
    if (used > 0) await send();
  } finally {
    closeSync(fd);
  }
  return { hex: hash.digest('hex'), size: state.produced, inFrame };
}

// The last message sent, the port is closed so the thread ends (a listening port would keep it, and the process, alive).
run()
  .then(
    (r) => parentPort.postMessage({ op: 'end', ...r }),
    (e) => parentPort.postMessage({ op: 'error', message: e.message, kind: e.kind, code: e.code }),
  )
  .finally(() => parentPort.close());
