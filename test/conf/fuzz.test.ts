// Seeded fuzzing of dkms.conf through the real loader (bash syntax check,
// DKMS's safe_source, evaluation) and through `kbundle conf`. Every case
// must either evaluate or fail with a KbundleError whose exit code is
// documented and whose message names the conf; nothing may take long.
import { cpuNow } from '../helpers/cpu-clock.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConf } from '../../src/conf/load.js';
import { KbundleError } from '../../src/util/errors.js';
import { twoKernels } from '../helpers/kernels.js';
import { pool, Rng } from '../helpers/prng.js';
import { kbundle } from '../helpers/scratch.js';
import { ctxFor, tempDir } from './conf-helpers.js';

const [K1] = twoKernels();
const SEEDS = [0x6b62, 0xc0f, 0x5eed];
const CASES_PER_SEED = 100;
const CASE_MS = 5000;

const BASES = [
  'PACKAGE_NAME=foo\nPACKAGE_VERSION=1.0\nBUILT_MODULE_NAME[0]=foo\nDEST_MODULE_LOCATION[0]=/extra\nAUTOINSTALL=yes\n',
  `PACKAGE_NAME="multi"
PACKAGE_VERSION="2.1"
BUILT_MODULE_NAME[0]="a"; BUILT_MODULE_LOCATION[0]="src/"; DEST_MODULE_LOCATION[0]="/updates/dkms"
BUILT_MODULE_NAME[1]="b"; DEST_MODULE_NAME[1]="bee"; DEST_MODULE_LOCATION[1]="/kernel/extra"; STRIP[1]=no
MAKE[0]="make -C $kernel_source_dir M=$dkms_tree/$PACKAGE_NAME/$PACKAGE_VERSION/build"
MAKE[1]="make new"; MAKE_MATCH[1]='^6\\.1[0-9]'
PATCH[0]=fix.patch; PATCH_MATCH[0]='^6\\.'
BUILD_EXCLUSIVE_KERNEL='^6\\.'
BUILD_EXCLUSIVE_CONFIG="CONFIG_MODULES !CONFIG_NOPE"
BUILD_DEPENDS=(base other)
`,
  `PACKAGE_NAME=logic
PACKAGE_VERSION=3
i=0
for m in one two three; do
  BUILT_MODULE_NAME[i]=$m; DEST_MODULE_LOCATION[i]=/extra; i=$((i+1))
done
case "$kernelver" in
  6.1.*) MAKE="make OLD=1" ;;
  *) MAKE="make NEW=$(echo $kernelver | cut -d. -f1-2)" ;;
esac
if [ -n "$arch" ]; then CLEAN="make clean ARCH=$arch"; fi
`,
  'PACKAGE_NAME="crlf"\r\nPACKAGE_VERSION=1\r\nBUILT_MODULE_NAME=crlf\r\nDEST_MODULE_LOCATION=/extra\r\n',
];

const ARRAYS = ['BUILT_MODULE_NAME', 'BUILT_MODULE_LOCATION', 'DEST_MODULE_NAME', 'DEST_MODULE_LOCATION', 'MAKE', 'MAKE_MATCH', 'PATCH', 'PATCH_MATCH', 'STRIP', 'BUILD_DEPENDS'];
const SCALARS = ['PACKAGE_NAME', 'PACKAGE_VERSION', 'MAKE', 'CLEAN', 'PRE_BUILD', 'AUTOINSTALL', 'BUILD_EXCLUSIVE_KERNEL', 'BUILD_EXCLUSIVE_CONFIG', 'BUILD_EXCLUSIVE_KERNEL_MIN'];
const INDICES = ['0', '1', '7', '1023', '1024', '4096', '1000000', '99999999999999999999', '9223372036854775807', '9223372036854775808', '-1', '1+1', '$((1<<62))', 'i++', 'x', '', '"a b"'];
const VALUES = ['x', '/extra', '""', "''", 'a.ko', '../x', '$kernelver', "'$arch'", '"$(echo sub)"', '*', '"a   b"', '\\$x', 'yes', 'NO'];
const TOKENS = ['"', "'", '`', '\\', '$(', '${', '$((', '(', ')', '{', '}', '[', ']', ';', '&&', '||', '|', '\n', '\r', '#', '=', '+=', ' ', '\t', '!', '*', '?', '~', '<<EOF\n', '\0'];
const SUBSTS = ['$(echo x)', '$(printf %s y)', '$(true)', '$(exit 3)', '$(cat /dev/null)', '$($(echo echo) z)', '`echo q`', '$(uname -r)', '${kernelver%%-*}', '${arch:-none}', '$((2**63))', '$((1/0))', '${!kernelver}', '${x?unset}'];
const INJECTIONS = [
  'exit 3',
  'return 2',
  'set -e; false',
  'set -u; echo "$nope"',
  "trap 'printf junk >&3' EXIT",
  'MAKE=\'a"; exit 9; x="\'',
  'PATCH[0]=../../x.patch',
  'unset PACKAGE_NAME',
  'unset -f echo; echo() { :; }',
  "MAKE='x\"; declare -gA PATCH; PATCH[k]=\"y'",
  'shopt -u extglob',
  'exec 3>&-',
  'exec 2>&-',
  'exec 1>&2',
  "BUILD_EXCLUSIVE_KERNEL='((((a{1,255}){1,255}){1,255}){1,255})'",
  "MAKE_MATCH[0]='(a*)*\\1'; MAKE[0]=m",
  'readonly MAKE=ro',
  'declare -i PACKAGE_VERSION=1+1',
  'PACKAGE_NAME=(a b c)',
  'alias PACKAGE_NAME=x',
  'for ((j = 0; j < 2000; j++)); do PATCH[j]=p$j; done',
  'eval "MAKE[5000]=y"',
  'DEST_MODULE_NAME[99999999999999999999]="x"',
];
const NESTS: ((d: number) => string)[] = [
  (d) => `X=${'$('.repeat(d)}echo${')'.repeat(d)}`,
  (d) => `X="${'${x:-'.repeat(d)}a${'}'.repeat(d)}"`,
  (d) => `X=$((${'('.repeat(d)}1${')'.repeat(d)}))`,
  (d) => `${'{ '.repeat(d)}:${'; }'.repeat(d)}`,
  (d) => `${'if true; then '.repeat(d)}:${'; fi'.repeat(d)}`,
  (d) => `X=(${'('.repeat(d)}`,
];
const LONG_UNITS = ['a', 'é', 'x y ', '\\\\', '$kernelver '];

type Mutator = (text: string, r: Rng) => string;

const at = (text: string, r: Rng, insert: string, replace = 0): string => {
  const i = r.int(text.length + 1);
  return text.slice(0, i) + insert + text.slice(i + replace);
};

const MUTATORS: Record<string, Mutator> = {
  bytes: (t, r) => {
    let out = t;
    for (let n = 1 + r.int(8); n > 0; n--) {
      let b = r.int(256);
      // '>' could form a redirection onto a real path (/extra) as root; the rest of the byte range is fair game.
      if (b === 0x3e) b = 0x3c;
      out = at(out, r, String.fromCharCode(b), r.int(2));
    }
    return out;
  },
  truncate: (t, r) => t.slice(0, r.int(t.length)),
  hugeIndex: (t, r) => `${t}${r.pick(ARRAYS)}[${r.pick(INDICES)}]=${r.pick(VALUES)}\n`,
  longValue: (t, r) => {
    const n = r.pick([1000, 10_000, 66_000, 300_000, 1_100_000]);
    const unit = r.pick(LONG_UNITS);
    return `${t}${r.pick(SCALARS)}="${unit.repeat(Math.ceil(n / unit.length))}"\n`;
  },
  token: (t, r) => at(t, r, r.pick(TOKENS)),
  subst: (t, r) => (r.chance(0.5) ? at(t, r, r.pick(SUBSTS)) : `${t}${r.pick(SCALARS)}="${r.pick(SUBSTS)}"\n`),
  array: (t, r) => `${t}${r.pick(ARRAYS)}${r.pick(['=', '+='])}(${Array.from({ length: r.int(5) }, () => r.pick(VALUES)).join(' ')})\n`,
  nest: (t, r) => `${t}${r.pick(NESTS)(r.pick([3, 50, 500, 5000, 20_000]))}\n`,
  lines: (t, r) => {
    const ls = t.split('\n');
    if (r.chance(0.5)) ls.splice(r.int(ls.length), 0, ls[r.int(ls.length)]!);
    else ls.sort(() => r.next() - 0.5);
    return ls.join('\n');
  },
  inject: (t, r) => (r.chance(0.5) ? `${t}${r.pick(INJECTIONS)}\n` : `${r.pick(INJECTIONS)}\n${t}`),
};

interface Outcome {
  seed: number;
  n: number;
  mutations: string[];
  code: number | 'ok' | 'crash';
  message: string;
  ms: number;
}

function cases(seed: number): { mutations: string[]; text: string }[] {
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

/** What a failure may look like: exit 5 for a '..' patch (DKMS's own wording), else exit 8 naming the conf. */
function acceptable(o: Outcome, conf: string): boolean {
  if (o.code === 'ok') return true;
  if (o.code === 5) return /^Patch .* as specified in dkms\.conf contains '\.\.' path component\.$/.test(o.message);
  return o.code === 8 && o.message.includes(conf);
}

const root = tempDir();
const cwd = join(root, 'cwd');
mkdirSync(cwd);

describe('dkms.conf fuzz', () => {
  it.each(SEEDS)('seed %i: every mutation evaluates or fails with a documented KbundleError, each in under 5 s', async (seed) => {
    const dir = join(root, `seed-${seed}`);
    const outcomes = await pool(cases(seed), 6, async (c, n) => {
      const d = join(dir, String(n));
      mkdirSync(d, { recursive: true });
      const conf = join(d, 'dkms.conf');
      writeFileSync(conf, c.text, 'latin1');
      const t = cpuNow();
      // The timeout is a backstop well above CASE_MS, so a hang shows up as a slow case, not a stuck test.
      const res = await loadConf(ctxFor(conf, K1), { cwd, stderr: 'capture', timeoutMs: 15_000 }).then(
        () => ({ code: 'ok' as const, message: '' }),
        (e: unknown) => (e instanceof KbundleError ? { code: e.exitCode, message: e.message } : { code: 'crash' as const, message: String((e as Error)?.stack ?? e) }),
      );
      const o: Outcome = { seed, n, mutations: c.mutations, ...res, ms: cpuNow() - t };
      return { o, conf };
    });
    const bad = outcomes.filter(({ o, conf }) => !acceptable(o, conf) || o.ms > CASE_MS).map(({ o }) => o);
    const codes: Record<string, number> = {};
    for (const { o } of outcomes) codes[String(o.code)] = (codes[String(o.code)] ?? 0) + 1;
    const max = Math.max(...outcomes.map(({ o }) => o.ms));
    console.log(`conf fuzz seed ${seed}: ${outcomes.length} cases, outcomes ${JSON.stringify(codes)}, max case ${max.toFixed(0)} ms`);
    expect(bad).toEqual([]);
    // The mutations must reach both sides, or the fuzz says nothing.
    expect(codes.ok).toBeGreaterThan(0);
    expect(codes['8']).toBeGreaterThan(0);
  });

  it('through `kbundle conf`: exit 0, 5 or 8, the conf named, never a stack trace', () => {
    const r = new Rng(0xc11);
    // The CLI sources from /, so no case that could open a file there for writing (`<>word`).
    const all = SEEDS.flatMap((s) => cases(s)).filter((c) => !c.text.includes('<>'));
    const picked = Array.from({ length: 15 }, () => r.pick(all));
    const seen = new Set<number>();
    for (const [n, c] of picked.entries()) {
      const d = join(root, 'cli', String(n));
      mkdirSync(d, { recursive: true });
      const conf = join(d, 'dkms.conf');
      writeFileSync(conf, c.text, 'latin1');
      const res = kbundle(['conf', conf, '-k', K1]);
      seen.add(res.code);
      expect([0, 5, 8], `case ${n} (${c.mutations.join('+')}): ${res.stderr}`).toContain(res.code);
      expect(res.stderr).not.toMatch(/\n\s+at .*:\d+:\d+\)?\n/);
      if (res.code === 8) expect(res.stderr).toContain(conf);
    }
    expect(seen.has(8)).toBe(true);
  });
});
