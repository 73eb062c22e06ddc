// Seeded byte-level fuzzing of a small real bundle through openBundle (and
// extractSource when it opens): every damaged file is either still a valid
// bundle (the damage hit tar padding) or refused with a KbundleError of the
// bundle range 30-40. Never another exception, never a slow case.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openBundle } from '../../src/bundle/read/open.js';
import { writeBundle } from '../../src/bundle/write/writer.js';
import { KbundleError } from '../../src/util/errors.js';
import { Rng } from '../helpers/prng.js';
import { makeSourceTree, realModules, spec, target, testKeys, tmp } from './fixtures.js';

const SEEDS = [0x6b62, 0xc0f, 0x5eed];
const CASES_PER_SEED = 300;
const CASE_MS = 5000;
const BLOCK = 512;

type Mutator = (b: Buffer, r: Rng) => Buffer;

const MUTATORS: Record<string, Mutator> = {
  flip: (b, r) => {
    const out = Buffer.from(b);
    for (let n = 1 + r.int(4); n > 0; n--) out[r.int(out.length)]! ^= 1 << r.int(8);
    return out;
  },
  // Tar headers are where a parser decides sizes and names.
  flipHeader: (b, r) => {
    const out = Buffer.from(b);
    const headers: number[] = [];
    for (let off = 0; off + BLOCK <= out.length; off += BLOCK) if (out.subarray(off + 257, off + 262).toString('latin1') === 'ustar') headers.push(off);
    const h = r.pick(headers);
    out[h + r.int(BLOCK)] = r.int(256);
    return out;
  },
  truncate: (b, r) => b.subarray(0, r.int(b.length)),
  truncateBlock: (b, r) => b.subarray(0, BLOCK * r.int(Math.floor(b.length / BLOCK))),
  append: (b, r) => Buffer.concat([b, Buffer.from(Array.from({ length: 1 + r.int(2 * BLOCK) }, () => r.int(256)))]),
  insert: (b, r) => {
    const at = r.int(b.length);
    return Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + r.int(16) }, () => r.int(256))), b.subarray(at)]);
  },
  zeroBlock: (b, r) => {
    const out = Buffer.from(b);
    out.fill(0, BLOCK * r.int(Math.floor(b.length / BLOCK)), undefined);
    return out.subarray(0, b.length);
  },
  dupBlock: (b, r) => {
    const at = BLOCK * r.int(Math.floor(b.length / BLOCK));
    return Buffer.concat([b.subarray(0, at), b.subarray(at, at + BLOCK), b.subarray(at)]);
  },
  swapBlocks: (b, r) => {
    const out = Buffer.from(b);
    const n = Math.floor(b.length / BLOCK);
    const [i, j] = [r.int(n), r.int(n)];
    b.copy(out, i * BLOCK, j * BLOCK, (j + 1) * BLOCK);
    b.copy(out, j * BLOCK, i * BLOCK, (i + 1) * BLOCK);
    return out;
  },
};

describe('bundle byte fuzz', () => {
  let good: Buffer;
  let dir: string;
  const { pk } = testKeys();

  beforeAll(async () => {
    dir = tmp('kbundle-bfz-');
    const src = makeSourceTree(dir);
    const file = join(dir, 'good.kbundle');
    await writeBundle(spec(src, [target('6.1.0-56-amd64', 'x86_64', realModules().slice(0, 1))]), file);
    good = readFileSync(file);
    // The undamaged bundle opens, so every refusal below is the damage's doing.
    await openBundle(file, { trustedKeys: [pk] });
  });

  it.each(SEEDS)('seed %i: every damaged bundle opens or is refused with 30-40, each in under 5 s', async (seed) => {
    const r = new Rng(seed);
    const names = Object.keys(MUTATORS);
    const codes: Record<string, number> = {};
    const bad: { n: number; mutations: string[]; why: string }[] = [];
    let max = 0;
    for (let n = 0; n < CASES_PER_SEED; n++) {
      const mutations: string[] = [];
      let bytes = good;
      for (let k = 1 + r.int(2); k > 0; k--) {
        const m = r.pick(names);
        mutations.push(m);
        bytes = MUTATORS[m]!(bytes, r);
      }
      const skipSignature = r.chance(0.5);
      const file = join(dir, `${seed}-${n}.kbundle`);
      writeFileSync(file, bytes);
      const t = performance.now();
      let code: string;
      try {
        const b = await openBundle(file, { trustedKeys: [pk], skipSignature });
        await b.extractSource('hello', join(dir, `${seed}-${n}.src`));
        code = 'ok';
      } catch (e) {
        code = e instanceof KbundleError ? String(e.exitCode) : 'crash';
        if (!(e instanceof KbundleError) || e.exitCode < 30 || e.exitCode > 40) bad.push({ n, mutations, why: String((e as Error)?.stack ?? e) });
      }
      const ms = performance.now() - t;
      max = Math.max(max, ms);
      if (ms > CASE_MS) bad.push({ n, mutations, why: `took ${ms.toFixed(0)} ms` });
      codes[code] = (codes[code] ?? 0) + 1;
    }
    console.log(`bundle fuzz seed ${seed}: ${CASES_PER_SEED} cases, outcomes ${JSON.stringify(codes)}, max case ${max.toFixed(0)} ms`);
    expect(bad).toEqual([]);
    expect(Object.keys(codes).filter((c) => c !== 'ok').length).toBeGreaterThan(1);
  });
});
