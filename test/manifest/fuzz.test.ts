// Seeded fuzzing of kbundle.yaml through parseManifest / loadManifest and
// kernel resolution. Every case must either load or fail with a KbundleError
// (34, or 36 when its kernels match nothing) whose every line names the file,
// with line:col where there is a position; nothing may take long, throw
// anything else, or make Node print a warning.
import { cpuNow } from '../helpers/cpu-clock.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveKernelTargets } from '../../src/manifest/kernels.js';
import { loadManifest, parseManifest } from '../../src/manifest/load.js';
import { KbundleError } from '../../src/util/errors.js';
import { tmp } from '../bundle/fixtures.js';
import { Rng } from '../helpers/prng.js';

const SEEDS = [0x6b62, 0xc0f, 0x5eed];
const CASES_PER_SEED = 300;
const CASE_MS = 5000;

const BASES = [
  `apiVersion: kbundle/v1
source: ../hello-1.0
kernels:
  - 6.1.0-*-amd64
  - release: 6.12.117+deb12-amd64
    headers: /lib/modules/6.12.117+deb12-amd64/build
arches: [x86_64]
signing:
  moduleKey: keys/mok.key
  moduleCert: keys/mok.crt
  hash: sha256
bundleKey: keys/bundle.key
compression:
  level: 12
sourceDateEpoch: 1700000000
metadata:
  vendor: Example Corp
  url: https://example.invalid/
  build: 42
output: hello.kbundle
`,
  `apiVersion: kbundle/v1
name: pair
version: "1.10"
sources: [a-1.0, b-2.0]
kernels: ["*", "6.1.0-5?-amd64", "[0-9].*"]
arches: [x86_64, aarch64]
`,
  '{"apiVersion": "kbundle/v1", "source": "x", "kernels": ["6.1.0-56-amd64"], "metadata": {"a": true}}\n',
];

const TAGS = ['!!binary ', '!!python/object:os.system ', '!foo ', '!!set ', '!!omap ', '!!timestamp ', '!<tag:yaml.org,2002:str> ', '!!int ', '!!float ', '!!null ', '!!map ', '!!seq '];
const SCALARS = ['1e400', '-0', '.nan', '.inf', '-.inf', '0x7fffffffffffffffff', '0o777', '99999999999999999999999', '~', 'null', 'true', 'yes', '""', "''", '"\\u0000"', '"\\uD800"', '|\n  block\n', '>-\n  folded\n', '[]', '{}', '[a, [b, [c]]]', '{a: {b: c}}', '*nope', '&a x', '*a'];
const TOKENS = ['-', ':', ' ', '  ', '\t', '\n', '\r\n', '#', '&', '*', '!', '|', '>', '[', ']', '{', '}', ',', '?', '"', "'", '%', '@', '`', '---\n', '...\n', '\uFEFF', '\0', '\u2028', '😀', '<<: *a\n'];
const KEYS = ['apiVersion', 'source', 'sources', 'kernels', 'arches', 'signing', 'bundleKey', 'compression', 'sourceDateEpoch', 'metadata', 'output', 'name', 'version', 'kernel', '__proto__', 'constructor', '<<'];

type Mutator = (text: string, r: Rng) => string;
const at = (text: string, r: Rng, insert: string, replace = 0): string => {
  const i = r.int(text.length + 1);
  return text.slice(0, i) + insert + text.slice(i + replace);
};

function bomb(r: Rng): string {
  const width = 2 + r.int(9);
  const depth = 2 + r.int(6);
  const lines = [`l0: &l0 [${Array(width).fill('"lol"').join(', ')}]`];
  for (let d = 1; d < depth; d++) lines.push(`l${d}: &l${d} [${Array(width).fill(`*l${d - 1}`).join(', ')}]`);
  return `${lines.join('\n')}\n`;
}

const MUTATORS: Record<string, Mutator> = {
  bytes: (t, r) => {
    let out = t;
    for (let n = 1 + r.int(8); n > 0; n--) out = at(out, r, String.fromCharCode(r.chance(0.9) ? r.int(256) : r.int(0x10000)), r.int(2));
    return out;
  },
  truncate: (t, r) => t.slice(0, r.int(t.length)),
  token: (t, r) => at(t, r, r.pick(TOKENS)),
  tag: (t, r) => {
    const i = t.indexOf(': ', r.int(t.length));
    return i < 0 ? `${r.pick(TAGS)}${t}` : `${t.slice(0, i + 2)}${r.pick(TAGS)}${t.slice(i + 2)}`;
  },
  scalar: (t, r) => {
    const i = t.indexOf(': ', r.int(t.length));
    if (i < 0) return `${t}${r.pick(KEYS)}: ${r.pick(SCALARS)}\n`;
    const end = t.indexOf('\n', i);
    return `${t.slice(0, i + 2)}${r.pick(SCALARS)}${end < 0 ? '' : t.slice(end)}`;
  },
  bomb: (t, r) => (r.chance(0.5) ? `${t}${bomb(r)}` : `${bomb(r)}${t}`),
  alias: (t, r) => `${t}${r.pick(KEYS)}: ${r.pick(['*nope', '*l0', '&x [*x]', '&y {a: *y}', '*'])}\n`,
  dupKey: (t, r) => `${t}${r.pick(KEYS)}: ${r.pick(SCALARS)}\n`,
  nest: (t, r) => {
    const d = r.pick([5, 100, 1000, 10_000, 30_000]);
    const shape = r.int(3);
    if (shape === 0) return `${t}metadata: ${'['.repeat(d)}${']'.repeat(d)}\n`;
    if (shape === 1) return `${t}metadata: ${'{a: '.repeat(d)}1${'}'.repeat(d)}\n`;
    return `${t}metadata:\n${Array.from({ length: Math.min(d, 2000) }, (_, i) => `${' '.repeat(i + 1)}k${i}:`).join('\n')} 1\n`;
  },
  long: (t, r) => {
    const n = r.pick([100, 5000, 60_000, 70_000, 400_000]);
    return r.chance(0.5) ? `${t}output: ${'x'.repeat(n)}\n` : `${t}kernels: [${Array(Math.ceil(n / 2)).fill('1').join(',')}]\n`;
  },
  keys: (t, r) => `${t}metadata:\n${Array.from({ length: r.pick([10, 1000, 6000]) }, (_, i) => `  k${r.int(1_000_000) ^ i}: ${i}\n`).join('')}`,
  complexKey: (t, r) => `${t}? ${r.pick(['[a, b]', '{a: 1}', '*nope', '!!binary AAAA'])}\n: v\n`,
  docs: (t, r) => r.pick([`%YAML 1.1\n---\n${t}`, `%TAG ! tag:x,2000:\n---\n${t}`, `${t}---\n${t}`, `${t}...\n`, `--- |\n  ${t}`]),
  lines: (t, r) => {
    const ls = t.split('\n');
    if (r.chance(0.5)) ls.splice(r.int(ls.length), 1);
    else ls.splice(r.int(ls.length), 0, ls[r.int(ls.length)]!);
    return ls.join('\n');
  },
  kernelGlob: (t, r) => `${t.replace(/^kernels:.*$/m, '')}kernels: ["${r.pick(['[z-a]', '[', '*a'.repeat(40) + 'b', '6.1.0-[!5]*', '?'.repeat(30), '[[:alpha:]]*', '**********', '/etc', '[]]'])}"]\n`,
};

interface Case {
  mutations: string[];
  text: string;
}

function cases(seed: number): Case[] {
  const r = new Rng(seed);
  const names = Object.keys(MUTATORS);
  return Array.from({ length: CASES_PER_SEED }, () => {
    let text = r.pick(BASES);
    const mutations: string[] = [];
    for (let k = 1 + r.int(3); k > 0; k--) {
      const m = r.pick(names);
      mutations.push(m);
      text = MUTATORS[m]!(text, r);
    }
    return { mutations, text };
  });
}

// Kernel resolution runs against a fake header root, so results do not depend on the machine.
const headerRoot = tmp('kbundle-fz-');
for (const k of ['6.1.0-55-amd64', '6.1.0-56-amd64', '6.12.117+deb12-amd64']) mkdirSync(join(headerRoot, k, 'build'), { recursive: true });

type Result = { code: 'ok' | 'crash' | number; message: string };

function classify(fn: () => void): Result {
  try {
    fn();
    return { code: 'ok', message: '' };
  } catch (e) {
    if (e instanceof KbundleError) return { code: e.exitCode, message: e.message };
    return { code: 'crash', message: String((e as Error)?.stack ?? e) };
  }
}

/** 34 with every line naming the file (file:line:col: or file: ...), or 36 from kernel resolution. */
function problems(r: Result, file: string, stage: 'parse' | 'kernels'): string | null {
  if (r.code === 'ok') return null;
  if (r.code === 'crash') return r.message;
  if (stage === 'kernels') return r.code === 34 || r.code === 36 ? null : `exit ${r.code}`;
  if (r.code !== 34) return `exit ${r.code}`;
  const lines = r.message.split('\n');
  const unplaced = lines.filter((l) => !l.startsWith(`${file}:`));
  return unplaced.length ? `lines without the file: ${JSON.stringify(unplaced.slice(0, 3))}` : null;
}

const warnings: string[] = [];
const onWarning = (w: Error) => warnings.push(w.message);
beforeAll(() => {
  process.on('warning', onWarning);
});
afterAll(() => {
  process.off('warning', onWarning);
});

describe('kbundle.yaml fuzz', () => {
  it.each(SEEDS)('seed %i: every mutation loads or fails with exit 34/36 naming the file, each in under 5 s', (seed) => {
    const file = '/fuzz/kbundle.yaml';
    const codes: Record<string, number> = {};
    const bad: { n: number; mutations: string[]; why: string; ms: number }[] = [];
    let max = 0;
    const timings: [number, string][] = [];
    for (const [n, c] of cases(seed).entries()) {
      const t = cpuNow();
      let manifest: ReturnType<typeof parseManifest> | null = null;
      const parsed = classify(() => {
        manifest = parseManifest(c.text, file);
      });
      let why = problems(parsed, file, 'parse');
      let final = parsed;
      if (!why && manifest) {
        const m: ReturnType<typeof parseManifest> = manifest;
        final = classify(() => resolveKernelTargets(m.kernels, [headerRoot]));
        why = problems(final, file, 'kernels');
      }
      const ms = cpuNow() - t;
      max = Math.max(max, ms);
      timings.push([ms, c.mutations.join('+')]);
      codes[String(final.code)] = (codes[String(final.code)] ?? 0) + 1;
      if (why || ms > CASE_MS) bad.push({ n, mutations: c.mutations, why: why ?? `took ${ms.toFixed(0)} ms`, ms });
    }
    const slow = [...timings].sort((a, b) => b[0] - a[0]).slice(0, 3).map(([ms, m]) => `${ms.toFixed(0)} ms ${m}`);
    console.log(`manifest fuzz seed ${seed}: slowest ${slow.join('; ')}`);
    console.log(`manifest fuzz seed ${seed}: ${CASES_PER_SEED} cases, outcomes ${JSON.stringify(codes)}, max case ${max.toFixed(0)} ms`);
    expect(bad).toEqual([]);
    expect(warnings).toEqual([]);
    expect(codes.ok).toBeGreaterThan(0);
    expect(codes['34']).toBeGreaterThan(0);
  });

  it('through loadManifest from disk: the same, for 60 cases', async () => {
    const r = new Rng(0xf11e);
    const all = SEEDS.flatMap((s) => cases(s));
    const dir = tmp('kbundle-fzl-');
    for (let n = 0; n < 60; n++) {
      const c = r.pick(all);
      const file = join(dir, `${n}.yaml`);
      writeFileSync(file, c.text);
      const res = await loadManifest(file).then(
        () => ({ code: 'ok' as const, message: '' }),
        (e: unknown) => (e instanceof KbundleError ? { code: e.exitCode, message: e.message } : { code: 'crash' as const, message: String(e) }),
      );
      expect(problems(res, file, 'parse'), `case ${n} (${c.mutations.join('+')})`).toBeNull();
    }
    expect(warnings).toEqual([]);
  });
});
