import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { compressStream, zstdParameters, ZstdDecoder } from '../../src/bundle/model/zstd.js';
import { KbundleError } from '../../src/util/errors.js';
import { tmp } from './fixtures.js';

async function run(input: Buffer, t: NodeJS.ReadWriteStream, chunk = 65536): Promise<Buffer> {
  const parts: Buffer[] = [];
  const chunks: Buffer[] = [];
  for (let i = 0; i < input.length; i += chunk) chunks.push(input.subarray(i, i + chunk));
  const out = Readable.from(chunks).pipe(t as NodeJS.ReadWriteStream & Readable);
  for await (const c of out as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

/** ZstdDecoder over `z` fed in `step`-byte pieces; throws what it throws. */
function unzstd(z: Buffer, maxOutput: number, what = 'zstd stream', step = 65536): Buffer {
  const d = new ZstdDecoder(maxOutput, what);
  const out: Buffer[] = [];
  for (let i = 0; i < z.length; i += step) d.decode(z.subarray(i, i + step), (p) => out.push(Buffer.from(p)));
  d.finish();
  return Buffer.concat(out);
}

function caught(f: () => unknown): KbundleError {
  try {
    f();
  } catch (e) {
    return e as KbundleError;
  }
  throw new Error('expected an error');
}

// Semi-compressible: text with random words, like a source tree.
function sample(n: number): Buffer {
  const words = Array.from({ length: 500 }, () => randomBytes(4).toString('hex'));
  let s = '';
  while (s.length < n) s += words[(s.length * 7919) % 500] + (s.length % 80 < 8 ? '\n' : ' ');
  return Buffer.from(s.slice(0, n));
}

describe('zstd', () => {
  test('round trip, and output independent of input chunking', async () => {
    const input = sample(3 << 20);
    const a = await run(input, compressStream(3), 4096);
    const b = await run(input, compressStream(3), 1 << 20);
    expect(a.equals(b)).toBe(true);
    expect(a.length).toBeLessThan(input.length / 2);
    expect(unzstd(a, input.length).equals(input)).toBe(true);
    // Output pieces do not depend on how the input is cut either.
    expect(unzstd(a, input.length, 'x', 777).equals(input)).toBe(true);
    expect(unzstd(a, input.length, 'x', a.length).equals(input)).toBe(true);
  });

  test('frames carry the XXH64 checksum and no content size; the zstd CLI reads them', async () => {
    const input = sample(100_000);
    const z = await run(input, compressStream(5));
    // Frame header descriptor byte: bit 2 = checksum flag, bits 6-7 = content size field size (0 here with single-segment off).
    const fhd = z[4];
    expect(fhd & 0x04).toBe(0x04);
    const d = tmp();
    writeFileSync(join(d, 'x.zst'), z);
    const r = spawnSync('zstd', ['-d', '-q', '-c', join(d, 'x.zst')], { maxBuffer: 1 << 24 });
    expect(r.status).toBe(0);
    expect(Buffer.from(r.stdout).equals(input)).toBe(true);
    expect(spawnSync('zstd', ['-lv', join(d, 'x.zst')], { encoding: 'utf8' }).stdout).toMatch(/Check:\s+XXH64/);
  });

  test('decompresses data made by the zstd CLI', async () => {
    const d = tmp();
    const input = sample(200_000);
    writeFileSync(join(d, 'y'), input);
    expect(spawnSync('zstd', ['-q', '-19', join(d, 'y')]).status).toBe(0);
    expect(unzstd(readFileSync(join(d, 'y.zst')), input.length).equals(input)).toBe(true);
  });

  test('bomb guard: output past the declared size aborts with exit 37', async () => {
    const bomb = await run(Buffer.alloc(64 << 20), compressStream(3));
    expect(bomb.length).toBeLessThan(64 << 10);
    const err = caught(() => unzstd(bomb, 1 << 20, 'source blob'));
    expect(err).toBeInstanceOf(KbundleError);
    expect((err as KbundleError).exitCode).toBe(37);
    expect((err as Error).message).toBe('source blob: decompressed output exceeds the declared 1048576 bytes');
  });

  test('exact declared size passes', async () => {
    const input = Buffer.alloc(1 << 20, 7);
    expect(unzstd(await run(input, compressStream(3)), 1 << 20).length).toBe(1 << 20);
  });

  test('garbage and truncated frames fail with exit 31', async () => {
    const z = await run(sample(100_000), compressStream(3));
    for (const bad of [Buffer.from('not zstd at all'), z.subarray(0, z.length - 10)]) {
      const err = caught(() => unzstd(bad, 1 << 20));
      expect((err as KbundleError).exitCode).toBe(31);
      expect((err as Error).message).toMatch(/not valid zstd data/);
    }
  });

  test('parameters are pinned and recorded', () => {
    expect(zstdParameters(7)).toEqual({
      implementation: 'zstd-napi',
      implementationVersion: '0.0.13',
      libzstdVersion: '1.5.7',
      api: 'CompressStream',
      level: 7,
      checksumFlag: true,
      contentSizeFlag: false,
      nbWorkers: 0,
    });
    expect(() => zstdParameters(0)).toThrow(/1\.\.22/);
  });
});
