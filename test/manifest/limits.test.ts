// Hostile kbundle.yaml input: exit 34 with file:line:col, quickly, never a
// stack trace or a hang.
import { cpuNow } from '../helpers/cpu-clock.js';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { resolveKernels } from '../../src/manifest/kernels.js';
import { loadManifest, parseManifest } from '../../src/manifest/load.js';
import { KbundleError } from '../../src/util/errors.js';
import { tmp } from '../bundle/fixtures.js';

const F = '/m/kbundle.yaml';
const HEAD = 'apiVersion: kbundle/v1\nsource: x\nkernels: [x]\n';

function problem(text: string): { lines: string[]; code: number; ms: number } {
  const t = cpuNow();
  try {
    parseManifest(text, F);
  } catch (e) {
    if (!(e instanceof KbundleError)) throw e;
    return { lines: e.message.split('\n'), code: e.exitCode, ms: cpuNow() - t };
  }
  throw new Error('expected the manifest to be refused');
}

describe('aliases', () => {
  test('a billion-laughs alias bomb is refused at its first alias', () => {
    const bomb = 'a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n';
    const r = problem(HEAD + bomb);
    expect(r.code).toBe(34);
    expect(r.lines).toEqual([`${F}:5:8: aliases expand to more than 100 copies (a YAML alias bomb?); refused`]);
  });

  test('an alias without an anchor names the alias', () => {
    const r = problem('apiVersion: kbundle/v1\nsource: *src\nkernels: [x]\n');
    expect([r.code, r.lines]).toEqual([34, [`${F}:2:9: alias *src has no anchor &src before it`]]);
  });

  test('an anchor used a few times is fine', () => {
    const m = parseManifest('apiVersion: kbundle/v1\nsources: [&s a, b]\nkernels: [x]\noutput: *s\n', F);
    expect(m.output).toBe('/m/a');
  });
});

describe('keys', () => {
  test('a collection as a mapping key is an error, not a process warning', () => {
    const r = problem(`${HEAD}? [a, b]\n: c\n`);
    expect([r.code, r.lines]).toEqual([34, [`${F}:4:3: a mapping key must be a plain string`]]);
  });

  test('20,000 metadata keys with one duplicate: found in well under a second per 10,000', () => {
    const keys = Array.from({ length: 20_000 }, (_, i) => `  k${i}: 1\n`).join('');
    const r = problem(`${HEAD}metadata:\n${keys}  k7: 2\n`);
    expect(r.lines).toEqual([`${F}: ${Buffer.byteLength(`${HEAD}metadata:\n${keys}  k7: 2\n`)} bytes; kbundle refuses a manifest over 64 KiB.`]);
    const small = Array.from({ length: 5_000 }, (_, i) => `  k${i}: 1\n`).join('');
    const s = problem(`${HEAD}metadata:\n${small}  k7: 2\n`);
    expect(s.lines).toEqual([`${F}:5005:3: Map keys must be unique`]);
    expect(s.ms).toBeLessThan(3000);
  });
});

describe('size and shape', () => {
  test('many bad list items: at most 50 lines, the rest counted, quickly', () => {
    const r = problem(`apiVersion: kbundle/v1\nsource: x\nkernels: [${Array(20_000).fill('1').join(',')}]\n`);
    expect(r.code).toBe(34);
    expect(r.lines).toHaveLength(51);
    expect(r.lines[0]).toBe(`${F}:3:11: kernels.0 must be a kernel release or glob (string), or an object {release, headers}`);
    expect(r.lines[50]).toBe(`${F}: ... and 19950 more schema problems`);
    expect(r.ms).toBeLessThan(3000);
  });

  test('deep nesting is a problem report, not a stack overflow', () => {
    const r = problem(`${HEAD}metadata: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n`);
    expect(r.code).toBe(34);
    expect(r.lines[0]).toMatch(/^\/m\/kbundle\.yaml:\d+:\d+: /);
  });

  test('loadManifest refuses a file over 64 KiB unread, and a FIFO', async () => {
    const d = tmp('kbundle-mfl-');
    const big = join(d, 'big.yaml');
    const text = `${HEAD}#${'x'.repeat(70_000)}\n`;
    writeFileSync(big, text);
    const e = await loadManifest(big).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(KbundleError);
    expect([(e as KbundleError).exitCode, (e as KbundleError).message]).toEqual([34, `${big}: ${text.length} bytes; kbundle refuses a manifest over 64 KiB.`]);
    const fifo = join(d, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    const f = await loadManifest(fifo).catch((x: unknown) => x);
    expect([(f as KbundleError).exitCode, (f as KbundleError).message]).toEqual([34, `${fifo}: not a regular file; a manifest must be one.`]);
  });

  test('sourceDateEpoch beyond year 9999 is refused, .inf is named as such', () => {
    expect(problem(`${HEAD}sourceDateEpoch: 253402300800\n`).lines).toEqual([`${F}:4:18: sourceDateEpoch must be <= 253402300799`]);
    expect(problem(`${HEAD}compression: {level: .inf}\n`).lines).toEqual([`${F}:4:22: compression.level must be integer, got number Infinity`]);
  });
});

describe('kernel patterns', () => {
  const root = tmp('kbundle-kp-');
  mkdirSync(join(root, `6.1.0-${'a'.repeat(60)}`, 'build'), { recursive: true });

  test('a pattern that would backtrack exponentially as a RegExp is matched in linear time', () => {
    const t = cpuNow();
    const e = (() => {
      try {
        resolveKernels([`${'*a'.repeat(40)}b`], [root]);
      } catch (x) {
        return x as KbundleError;
      }
      return null;
    })();
    expect(e?.exitCode).toBe(36);
    expect(cpuNow() - t).toBeLessThan(1000);
    expect(resolveKernels([`6.1.0-${'*a'.repeat(40)}`], [root])).toEqual([`6.1.0-${'a'.repeat(60)}`]);
  });

  test('an invalid [...] class is a manifest error (34), not a SyntaxError', () => {
    let e: unknown = null;
    try {
      resolveKernels(['6.1.0-[z-a]'], [root]);
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(KbundleError);
    expect([(e as KbundleError).exitCode, (e as KbundleError).message]).toEqual([34, 'kernel pattern "6.1.0-[z-a]" has an invalid class "[z-a]"']);
  });
});
