// One step of zstd decompression under kbundle's rules, shared by the main
// thread (zstd.ts ZstdDecoder) and the decompressing thread
// (read/unzstd-worker.cjs). CommonJS for the reason the workers are (see
// read/range-read.cjs); the TypeScript side loads it with createRequire.
'use strict';

/**
 * One decompressStream call of `dctx` (a zstd-napi binding DCtx) from `src`
 * into `dst`. The output is counted in `state.produced`; once it passes
 * `state.limit` (the signed, declared size) it throws an error of kind
 * 'limit', and invalid data throws kind 'zstd', so a decompression bomb stops
 * inside the loop on either thread. Answers [remaining, produced, consumed]
 * as zstd does.
 */
function decompressStep(dctx, dst, src, state) {
  let r;
  try {
    r = dctx.decompressStream(dst, src);
  } catch (e) {
    throw Object.assign(new Error(e.message), { kind: 'zstd' });
  }
  state.produced += r[1];
  if (state.produced > state.limit) throw Object.assign(new Error('over limit'), { kind: 'limit' });
  return r;
}

module.exports = { decompressStep };
