// dkms.conf sourced by real bash: what comes back, and DKMS's expansion quirks.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readRawConf, sourceConf } from '../../src/conf/read-raw.js';
import type { RawConf } from '../../src/conf/types.js';
import { KbundleError } from '../../src/util/errors.js';
import { twoKernels } from '../helpers/kernels.js';
import { ctxFor, tempDir, writeConf } from './conf-helpers.js';

const [K1] = twoKernels();
const dir = tempDir();
const arr = (raw: RawConf, name: string) => Object.fromEntries(raw.get(name) ?? []);

async function rejection(p: Promise<unknown>): Promise<KbundleError> {
  const e = await p.then(() => null, (x: unknown) => x);
  expect(e).toBeInstanceOf(KbundleError);
  return e as KbundleError;
}

describe('readRawConf', () => {
  it('returns scalars as index 0, sparse arrays as written, and drops names off the whitelist', async () => {
    const p = writeConf(dir, [
      'PACKAGE_NAME=foo',
      'PACKAGE_VERSION=1.0',
      'MAKE="make all"',
      'BUILT_MODULE_NAME[0]=a',
      'BUILT_MODULE_NAME[3]=d',
      'DEST_MODULE_LOCATION=( /extra /updates )',
      'MY_PRIVATE=x',
    ].join('\n'));
    const raw = await readRawConf(ctxFor(p, K1));
    expect(arr(raw, 'MAKE')).toEqual({ 0: 'make all' });
    expect(arr(raw, 'BUILT_MODULE_NAME')).toEqual({ 0: 'a', 3: 'd' });
    expect(arr(raw, 'DEST_MODULE_LOCATION')).toEqual({ 0: '/extra', 1: '/updates' });
    expect(raw.has('MY_PRIVATE')).toBe(false);
  });

  it('expands every value a second time with only DKMS variables visible', async () => {
    const p = writeConf(dir, [
      'PACKAGE_NAME=foo',
      'PACKAGE_VERSION=1.2',
      'LOCALVAR=secret',
      'MAKE[0]="make V=\\"${PACKAGE_VERSION}\\""',
      "MAKE[1]='make K=$kernelver L=$LOCALVAR'",
      'MAKE[2]="make L=$LOCALVAR"',
      'MAKE[3]="make    a',
      '     b"',
      "MAKE[4]='make D=\\$kernelver'",
      "MAKE[5]='make S=$(echo sub)'",
    ].join('\n'));
    const raw = await readRawConf(ctxFor(p, K1));
    expect(arr(raw, 'MAKE')).toEqual({
      0: 'make V=1.2', // escaped quotes are lost
      1: `make K=${K1} L=`, // single quotes defer to pass 2, where conf-local vars are gone
      2: 'make L=secret', // pass 1 kept the local value
      3: 'make a b', // unquoted echo collapses whitespace and newlines
      4: 'make D=$kernelver', // \$ survives pass 2 as a literal $
      5: 'make S=sub', // command substitution runs in pass 2 too
    });
  });

  it('gives the conf the variables DKMS has set', async () => {
    const p = writeConf(dir, 'PACKAGE_NAME=x\nMAKE="$kernelver|$arch|$kernel_source_dir|$kernel_config|$dkms_tree|$source_tree|$install_tree|$module|$module_version|$parallel_jobs"\n');
    const raw = await readRawConf(ctxFor(p, K1, { module: 'x', moduleVersion: '9', dkmsTree: '/t/dkms', parallelJobs: 3 }));
    expect(arr(raw, 'MAKE')[0]).toBe(
      `${K1}|x86_64|/lib/modules/${K1}/build|/lib/modules/${K1}/build/include/config/auto.conf|/t/dkms|/usr/src|/lib/modules|x|9|3`,
    );
  });

  it('answers MAKE_MATCH with bash =~ (POSIX classes included)', async () => {
    const p = writeConf(dir, "PACKAGE_NAME=x\nMAKE_MATCH[0]='^[[:digit:]]+\\.[[:digit:]]+\\.'\nMAKE_MATCH[1]='^[[:alpha:]]'\nMAKE_MATCH[2]='('\n");
    const { regex } = await sourceConf(ctxFor(p, K1));
    expect([...regex.values()]).toEqual(['match', 'nomatch', 'invalid']);
  });

  it('strips one trailing CR per value of a CRLF conf', async () => {
    const p = writeConf(dir, 'PACKAGE_NAME="crlf"\r\nPACKAGE_VERSION=2.0\r\nMAKE="make all"\r\n');
    const raw = await readRawConf(ctxFor(p, K1));
    expect(arr(raw, 'PACKAGE_NAME')).toEqual({ 0: 'crlf' });
    expect(arr(raw, 'PACKAGE_VERSION')).toEqual({ 0: '2.0' });
    expect(arr(raw, 'MAKE')).toEqual({ 0: 'make all' });
  });

  it('expands unquoted globs inside values against the working directory, as DKMS does', async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, 'x1'), '');
    writeFileSync(join(cwd, 'x2'), '');
    const p = writeConf(dir, 'PACKAGE_NAME=g\nMAKE="make a x* b"\n');
    expect(arr(await readRawConf(ctxFor(p, K1), { cwd }), 'MAKE')[0]).toBe('make a x1 x2 b');
  });

  it('passes the conf stderr through and keeps its stdout out of the values', async () => {
    const p = writeConf(dir, 'echo to-stdout\necho to-stderr >&2\nPACKAGE_NAME=loud\n');
    const r = await sourceConf(ctxFor(p, K1), { stderr: 'capture' });
    expect(r.stderr).toContain('to-stderr');
    expect(r.stderr).not.toContain('to-stdout');
    expect(arr(r.raw, 'PACKAGE_NAME')).toEqual({ 0: 'loud' });
  });

  describe('environment', () => {
    const saved = process.env.PACKAGE_VERSION;
    afterEach(() => {
      if (saved === undefined) delete process.env.PACKAGE_VERSION;
      else process.env.PACKAGE_VERSION = saved;
    });
    it('does not let an environment variable of a whitelisted name leak in', async () => {
      process.env.PACKAGE_VERSION = 'from-env';
      const p = writeConf(dir, 'PACKAGE_NAME=e\n');
      expect((await readRawConf(ctxFor(p, K1))).has('PACKAGE_VERSION')).toBe(false);
    });
  });

  it('reports a syntax error with file:line and exit 8', async () => {
    const p = writeConf(dir, 'PACKAGE_NAME=x\nif true; then\n  MAKE=a\nfi\nfi\n');
    const e = await rejection(readRawConf(ctxFor(p, K1)));
    expect(e.exitCode).toBe(8);
    expect(e.message).toBe(`${p}:5: syntax error near unexpected token 'fi'`);
  });

  it('reports an unterminated quote at the line where it opens', async () => {
    const p = writeConf(dir, 'PACKAGE_NAME=x\nMAKE="make\nCLEAN=y\n');
    const e = await rejection(readRawConf(ctxFor(p, K1)));
    expect(e.exitCode).toBe(8);
    expect(e.message).toBe(`${p}:2: unexpected EOF while looking for matching '"'`);
  });

  it('fails with exit 4 naming the path when the conf does not exist', async () => {
    const p = join(dir, 'nope', 'dkms.conf');
    const e = await rejection(readRawConf(ctxFor(p, K1)));
    expect(e.exitCode).toBe(4);
    expect(e.message).toBe(`Could not locate dkms.conf file: ${p} does not exist.`);
  });

  it('applies override files in DKMS order, each re-expanding everything, then directives', async () => {
    const etc = tempDir();
    const p = writeConf(dir, "PACKAGE_NAME=ov\nPACKAGE_VERSION=1.0\nMAKE=make\nCLEAN='echo \\$kernelver'\n");
    const [K1a] = [K1];
    writeFileSync(join(etc, 'ov.conf'), 'MAKE="$MAKE general"\n');
    writeFileSync(join(etc, 'ov-1.0.conf'), 'MAKE="$MAKE version"\n');
    writeFileSync(join(etc, `ov-1.0-${K1a}.conf`), 'MAKE="$MAKE kernel"\n');
    writeFileSync(join(etc, `ov-1.0-${K1a}-x86_64.conf`), 'MAKE="$MAKE arch"\n');
    writeFileSync(join(etc, `ov--${K1a}.conf`), 'MAKE="$MAKE anyversion"\n');
    writeFileSync(join(etc, `ov--${K1a}-x86_64.conf`), 'MAKE="$MAKE anyversion-arch"\n');
    writeFileSync(join(etc, 'ov-1.0-other-kernel.conf'), 'MAKE="$MAKE WRONG"\n');
    const raw = await readRawConf(ctxFor(p, K1, {
      module: 'ov', moduleVersion: '1.0', overridesDir: etc,
      directives: ['AUTOINSTALL=yes', 'POST_ADD=run $HOME'],
    }));
    expect(arr(raw, 'MAKE')[0]).toBe('make general version kernel arch anyversion anyversion-arch');
    // the \$ deferral of the conf is used up by the first override file's pass
    expect(arr(raw, 'CLEAN')[0]).toBe(`echo ${K1}`);
    // directives are set verbatim, never expanded
    expect(arr(raw, 'AUTOINSTALL')[0]).toBe('yes');
    expect(arr(raw, 'POST_ADD')[0]).toBe('run $HOME');
  });

  it('rejects a directive without NAME=', async () => {
    const p = writeConf(dir, 'PACKAGE_NAME=d\n');
    const e = await rejection(readRawConf(ctxFor(p, K1, { directives: ['justtext'] })));
    expect(e.exitCode).toBe(2);
  });

  it('checks override files for syntax errors too', async () => {
    const etc = tempDir();
    mkdirSync(etc, { recursive: true });
    const p = writeConf(dir, 'PACKAGE_NAME=so\n');
    writeFileSync(join(etc, 'so.conf'), 'case x in\n');
    const e = await rejection(readRawConf(ctxFor(p, K1, { module: 'so', overridesDir: etc })));
    expect(e.exitCode).toBe(8);
    expect(e.message).toMatch(new RegExp(`^${join(etc, 'so.conf').replace(/[.+]/g, '\\$&')}:\\d+: syntax error`));
  });
});
