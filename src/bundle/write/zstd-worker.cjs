// Worker thread for the bundle packer (driven by zstd-worker.ts).
//
// Plain CommonJS, not TypeScript: a worker is started from a file path, and
// the same file must run under tsc's dist/ and under vitest's sources.
// tsc copies it into dist/ (allowJs).
//
// A job compresses the chunks it is sent into `file` (level, checksum flag,
// no content size, no worker threads: the same frame zstd.ts's
// compressStream writes), hashing the compressed bytes on the way; every
// message names its job by id. Every chunk is acknowledged once consumed,
// with its memory handed back for reuse, which is what bounds the memory in
// flight; `end` answers with the digest and size of the compressed bytes.
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { closeSync, openSync, writeSync } = require('node:fs');

const binding = require(workerData.zstdBinding);

const jobs = new Map();

function zstdJob(msg) {
  const hash = createHash('sha256');
  const cctx = new binding.CCtx();
  cctx.setParameter(binding.CParameter.compressionLevel, msg.level);
  cctx.setParameter(binding.CParameter.checksumFlag, 1);
  cctx.setParameter(binding.CParameter.contentSizeFlag, 0);
  cctx.setParameter(binding.CParameter.nbWorkers, 0);
  const fd = openSync(msg.file, 'wx', 0o644);
  const out = Buffer.allocUnsafe(1 << 20);
  let open = true;
  const job = { hash, size: 0 };
  const run = (chunk, op) => {
    for (;;) {
      const [remaining, produced, consumed] = cctx.compressStream2(out, chunk, op);
      if (produced > 0) {
        const bytes = out.subarray(0, produced);
        hash.update(bytes);
        job.size += produced;
        for (let off = 0; off < produced; ) off += writeSync(fd, bytes, off, produced - off);
      }
      chunk = chunk.subarray(consumed);
      if (chunk.length === 0 && (op === binding.EndDirective.continue || remaining === 0)) return;
    }
  };
  job.consume = (chunk) => run(chunk, binding.EndDirective.continue);
  job.close = () => {
    // fds belong to the process, not the thread: closed even when the thread is about to be stopped.
    if (open) closeSync(fd);
    open = false;
  };
  job.finish = () => {
    try {
      run(Buffer.alloc(0), binding.EndDirective.end);
    } finally {
      job.close();
    }
  };
  return job;
}

parentPort.on('message', (msg) => {
  try {
    if (msg.op === 'begin') {
      jobs.set(msg.id, zstdJob(msg));
    } else if (msg.op === 'chunk') {
      jobs.get(msg.id).consume(Buffer.from(msg.buf, 0, msg.length));
      parentPort.postMessage({ op: 'ack', id: msg.id, buf: msg.buf }, [msg.buf]);
    } else if (msg.op === 'end') {
      const job = jobs.get(msg.id);
      jobs.delete(msg.id);
      job.finish();
      parentPort.postMessage({ op: 'done', id: msg.id, digest: 'sha256:' + job.hash.digest('hex'), size: job.size });
    }
  } catch (err) {
    const job = jobs.get(msg.id);
    if (job) job.close();
    jobs.delete(msg.id);
    parentPort.postMessage({ op: 'error', id: msg.id, message: err && err.message ? err.message : String(err), code: err && err.code });
  }
});
