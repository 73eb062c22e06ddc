// Hostile dkms.conf input ends in exit 8 with the file (and line) named,
// quickly, instead of minutes of CPU or gigabytes of memory.
import { cpuNow } from '../helpers/cpu-clock.js';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { evaluateConf } from '../../src/conf/evaluate.js';
import { CONF_LIMITS } from '../../src/conf/limits.js';
import { loadConf } from '../../src/conf/load.js';
import type { RawConf } from '../../src/conf/types.js';
import { KbundleError } from '../../src/util/errors.js';
import { twoKernels } from '../helpers/kernels.js';
import { kbundle } from '../helpers/scratch.js';
import { ctxFor, tempDir, writeConf } from './conf-helpers.js';

const [K1] = twoKernels();
const dir = tempDir();
const HEAD = 'PACKAGE_NAME=foo\nPACKAGE_VERSION=1.0\nBUILT_MODULE_NAME[0]=foo\nDEST_MODULE_LOCATION[0]=/extra\n';

async function rejection(p: Promise<unknown>): Promise<KbundleError> {
  const e = await p.then(() => null, (x: unknown) => x);
  expect(e).toBeInstanceOf(KbundleError);
  return e as KbundleError;
}

/** Live processes whose command line names `text`. */
function processesMentioning(text: string): string[] {
  return readdirSync('/proc').filter((n) => {
    if (!/^\d+$/.test(n)) return false;
    try {
      const stat = readFileSync(`/proc/${n}/stat`, 'latin1');
      return !/^\S+ \(.*\) Z/.test(stat) && readFileSync(`/proc/${n}/cmdline`, 'latin1').includes(text);
    } catch {
      return false;
    }
  });
}

async function timed<T>(p: Promise<T>): Promise<[T | KbundleError, number]> {
  const t = cpuNow();
  const r = await p.catch((e: unknown) => e as KbundleError);
  return [r, cpuNow() - t];
}

describe('array indices', () => {
  it('refuses the 64-bit-wrapped index of DEST_MODULE_NAME[99999999999999999999] with file:line, fast', async () => {
    const p = writeConf(dir, `${HEAD}# a comment\nDEST_MODULE_NAME[99999999999999999999]="x"\n`);
    const [e, ms] = await timed(loadConf(ctxFor(p, K1)));
    expect(e).toBeInstanceOf(KbundleError);
    expect((e as KbundleError).exitCode).toBe(8);
    expect((e as KbundleError).message).toBe(`${p}:6: DEST_MODULE_NAME[7766279631452241919]: array index above 1023, the highest kbundle accepts.`);
    expect(ms).toBeLessThan(5000);
  });

  it('accepts index 1023 and refuses 1024, also through the CLI', async () => {
    const ok = writeConf(dir, `${HEAD}PATCH[1023]=last.patch\n`);
    expect((await loadConf(ctxFor(ok, K1))).raw.get('PATCH')?.get(1023)).toBe('last.patch');
    const bad = writeConf(dir, `${HEAD}i=1024\nMAKE[$i]="make"\n`);
    const r = kbundle(['conf', bad, '-k', K1]);
    expect(r.code).toBe(8);
    expect(r.stderr).toContain(`${bad}:6: MAKE[1024]: array index above 1023`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('names an associative array (made by DKMS\'s second pass sourcing a value) as such', async () => {
    const p = writeConf(dir, `${HEAD}\nMAKE='make"; declare -gA PATCH; PATCH[key]="x.patch'\n`);
    const e = await rejection(loadConf(ctxFor(p, K1)));
    expect(e.exitCode).toBe(8);
    expect(e.message).toBe(`${p}:6: PATCH[key]: array index is not a number (an associative array?).`);
  });

  it('reports a module gap as one range instead of one error per missing record', async () => {
    const p = writeConf(dir, `${HEAD}BUILT_MODULE_NAME[1000]=far\nDEST_MODULE_LOCATION[1000]=/extra\n`);
    const e = await rejection(loadConf(ctxFor(p, K1)));
    expect(e.exitCode).toBe(8);
    expect(e.message.split('\n')).toEqual([
      `${p}: No 'BUILT_MODULE_NAME' directive specified for records #1 to #999.`,
      `${p}: No 'DEST_MODULE_LOCATION' directive specified for records #1 to #999.`,
    ]);
  });

  it('evaluateConf refuses an out-of-range module index in a hand-built RawConf without iterating up to it', () => {
    const raw: RawConf = new Map([
      ['PACKAGE_NAME', new Map([[0, 'h']])],
      ['PACKAGE_VERSION', new Map([[0, '1']])],
      ['DEST_MODULE_LOCATION', new Map([[0, '/extra'], [7766279631452241919, '/extra']])],
    ]);
    const t = cpuNow();
    expect(() => evaluateConf(raw, ctxFor('/x/dkms.conf', K1), null)).toThrow(/^\/x\/dkms\.conf: Module array index 7766279631452242000 is outside 0-1023/);
    expect(cpuNow() - t).toBeLessThan(1000);
  });
});

describe('sizes', () => {
  it('refuses a value over 64 KiB with file:line, and evaluates a 1 MB value in well under 5 s', async () => {
    const p = writeConf(dir, `${HEAD}MAKE="${'a'.repeat(1_000_000)}"\n`);
    const [e, ms] = await timed(loadConf(ctxFor(p, K1)));
    expect((e as KbundleError).exitCode).toBe(8);
    expect((e as KbundleError).message).toBe(`${p}:5: MAKE[0]: value of 1000000 bytes; kbundle accepts at most 64 KiB.`);
    expect(ms).toBeLessThan(5000);
  });

  it('keeps a value of exactly 64 KiB', async () => {
    const v = 'b'.repeat(CONF_LIMITS.valueBytes);
    const c = await loadConf(ctxFor(writeConf(dir, `${HEAD}MAKE="${v}"\n`), K1));
    expect(c.make).toBe(v);
  });

  it('refuses a value built by code rather than written out', async () => {
    const p = writeConf(dir, `${HEAD}CLEAN=$(head -c 70000 /dev/zero | tr '\\0' c)\n`);
    const e = await rejection(loadConf(ctxFor(p, K1)));
    expect(e.message).toBe(`${p}:5: CLEAN[0]: value of 70000 bytes; kbundle accepts at most 64 KiB.`);
  });

  it('stops a conf whose values add up to more than 4 MiB', async () => {
    const p = writeConf(dir, `${HEAD}for ((i = 0; i < 100; i++)); do PATCH[i]=$(head -c 60000 /dev/zero | tr '\\0' p); done\n`);
    const e = await rejection(loadConf(ctxFor(p, K1)));
    expect(e.exitCode).toBe(8);
    expect(e.message).toBe(`sourcing ${p}: its values add up to more than 4 MiB; stopped.`);
  });

  it('refuses a conf file over 1 MiB before running it', async () => {
    const p = writeConf(dir, `${HEAD}touch ${join(dir, 'ran')}\n#${'x'.repeat(CONF_LIMITS.fileBytes)}\n`);
    const e = await rejection(loadConf(ctxFor(p, K1)));
    expect(e.exitCode).toBe(8);
    expect(e.message).toMatch(new RegExp(`^${p.replace(/[.+]/g, '\\$&')}: \\d+ bytes; kbundle refuses a dkms.conf over 1 MiB\\.$`));
  });

  it('refuses a conf that is not a regular file (a FIFO would block bash -n)', async () => {
    const fifo = join(dir, 'fifo.conf');
    execFileSync('mkfifo', [fifo]);
    const e = await rejection(loadConf(ctxFor(fifo, K1)));
    expect(e.message).toBe(`${fifo}: not a regular file; a dkms.conf must be one.`);
  });
});

describe('time', () => {
  it('stops a conf that never finishes, with exit 8', async () => {
    const p = writeConf(dir, `${HEAD}while :; do :; done\n`);
    const [e, ms] = await timed(loadConf(ctxFor(p, K1), { timeoutMs: 1000 }));
    expect((e as KbundleError).exitCode).toBe(8);
    expect((e as KbundleError).message).toBe(`sourcing ${p} did not finish within 1 s; stopped.`);
    expect(ms).toBeLessThan(5000);
    // The conf runs in a subshell of the bash kbundle started; that one must be gone too.
    await new Promise((r) => setTimeout(r, 200));
    expect(processesMentioning(p)).toEqual([]);
  });

  it('does not wait for a command the conf leaves running in the background', async () => {
    // Its stdout and stderr go elsewhere, so only our record channel (fd 3) could keep us waiting.
    const p = writeConf(dir, `${HEAD}sleep 10 >/dev/null 2>&1 &\n`);
    const [c, ms] = await timed(loadConf(ctxFor(p, K1)));
    expect((c as { name: string }).name).toBe('foo');
    expect(ms).toBeLessThan(5000);
  });

  it('answers a regex that would compile to gigabytes as invalid, quickly', async () => {
    const p = writeConf(dir, `${HEAD}BUILD_EXCLUSIVE_KERNEL='((((a{1,255}){1,255}){1,255}){1,255}){1,255}'\n`);
    const [c, ms] = await timed(loadConf(ctxFor(p, K1)));
    expect((c as { excludeReasons: string[] }).excludeReasons).toEqual([
      'BUILD_EXCLUSIVE_KERNEL "((((a{1,255}){1,255}){1,255}){1,255}){1,255}" is not a valid regular expression',
    ]);
    expect(ms).toBeLessThan(5000);
  });

  it('refuses ${ / $( nested deeper than 128 with file:line, before bash spends seconds and gigabytes on it', async () => {
    const p = writeConf(dir, `${HEAD}X="${'${x:-'.repeat(20_000)}a${'}'.repeat(20_000)}"\n`);
    const [e, ms] = await timed(loadConf(ctxFor(p, K1)));
    expect((e as KbundleError).exitCode).toBe(8);
    expect((e as KbundleError).message).toBe(`${p}:5: \${ or $( nested more than 128 deep; kbundle refuses it.`);
    expect(ms).toBeLessThan(1000);
    const ok = writeConf(dir, `${HEAD}MAKE="${'${x:-'.repeat(100)}deep${'}'.repeat(100)}"\n`);
    expect((await loadConf(ctxFor(ok, K1))).make).toBe('deep');
  });

  it('caps the memory a conf can take: building a 700 MB string fails instead of succeeding', async () => {
    const p = writeConf(dir, `${HEAD}BIG=$(head -c 700000000 /dev/zero | tr '\\0' a)\n`);
    const e = await rejection(loadConf(ctxFor(p, K1), { stderr: 'capture' }));
    expect(e.exitCode).toBe(8);
    expect(e.message).toContain(p);
  });

  it('refuses deep $( nesting before bash -n, which would crash on it', async () => {
    const p = writeConf(dir, `${HEAD}X=${'$('.repeat(20000)}echo${')'.repeat(20000)}\n`);
    const e = await rejection(loadConf(ctxFor(p, K1)));
    expect(e.exitCode).toBe(8);
    expect(e.message).toBe(`${p}:5: \${ or $( nested more than 128 deep; kbundle refuses it.`);
  });
});
