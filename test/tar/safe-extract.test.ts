import { spawnSync } from 'node:child_process';
import { createReadStream, existsSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { safeExtract } from '../../src/tar/safe-extract.js';
import { KbundleError } from '../../src/util/errors.js';
import { tmp } from '../bundle/fixtures.js';

/** Builds a tar with Python's tarfile, which writes whatever headers we ask for. */
function pyTar(out: string, members: string): void {
  const script = `
import tarfile, io, sys
t = tarfile.open(sys.argv[1], 'w', format=tarfile.GNU_FORMAT)
def f(name, data=b'x', mode=0o644):
    i = tarfile.TarInfo(name); i.size = len(data); i.mode = mode; t.addfile(i, io.BytesIO(data))
def d(name):
    i = tarfile.TarInfo(name); i.type = tarfile.DIRTYPE; i.mode = 0o755; t.addfile(i)
def sym(name, target):
    i = tarfile.TarInfo(name); i.type = tarfile.SYMTYPE; i.linkname = target; t.addfile(i)
def hard(name, target):
    i = tarfile.TarInfo(name); i.type = tarfile.LNKTYPE; i.linkname = target; t.addfile(i)
def dev(name, kind):
    i = tarfile.TarInfo(name); i.type = kind; i.devmajor = 1; i.devminor = 3; t.addfile(i)
${members}
t.close()
`;
  const r = spawnSync('python3', ['-c', script, out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
}

async function attempt(members: string, limits = {}) {
  const d = tmp();
  pyTar(join(d, 'evil.tar'), members);
  const dest = join(d, 'out');
  const err = await safeExtract(createReadStream(join(d, 'evil.tar')), dest, { what: 'evil.tar', ...limits }).then(
    () => null,
    (e: unknown) => e as KbundleError,
  );
  // Nothing may be left behind: neither the destination nor a staging dir.
  const left = readdirSync(d).filter((n) => n !== 'evil.tar');
  return { err, left, dest, d };
}

describe('safeExtract', () => {
  test('extracts a benign tree with modes normalised and links intact', async () => {
    const d = tmp();
    pyTar(join(d, 'ok.tar'), `d('pkg/')\nf('pkg/a.c', b'int x;', 0o600)\nf('pkg/run.sh', b'#!/bin/sh', 0o700)\nsym('pkg/link.c', 'a.c')\nhard('pkg/b.c', 'pkg/a.c')\nf('pkg/sub/deep.h', b'h')`);
    const entries = await safeExtract(createReadStream(join(d, 'ok.tar')), join(d, 'out'));
    expect(entries.map((e) => `${e.type}:${e.path}`)).toEqual(['dir:pkg', 'file:pkg/a.c', 'file:pkg/run.sh', 'symlink:pkg/link.c', 'link:pkg/b.c', 'file:pkg/sub/deep.h']);
    expect(statSync(join(d, 'out/pkg/a.c')).mode & 0o777).toBe(0o644);
    expect(statSync(join(d, 'out/pkg/run.sh')).mode & 0o777).toBe(0o755);
    expect(readlinkSync(join(d, 'out/pkg/link.c'))).toBe('a.c');
    expect(readFileSync(join(d, 'out/pkg/b.c'), 'utf8')).toBe('int x;');
    expect(readdirSync(d).sort()).toEqual(['ok.tar', 'out']);
  });

  const cases: [string, string, RegExp, number?][] = [
    ['parent traversal', `f('ok')\nf('../x')`, /entry "\.\.\/x" contains a "\.\." component/],
    ['nested traversal', `f('a/../../x')`, /contains a "\.\." component/],
    ['absolute path', `f('/etc/x')`, /entry "\/etc\/x" is an absolute path/],
    ['symlink escaping', `sym('s', '../outside')`, /symlink s -> \.\.\/outside points outside/],
    ['absolute symlink', `sym('s', '/etc/passwd')`, /symlink s -> \/etc\/passwd points outside/],
    ['symlink chain escaping via later link', `sym('a', 'b/..')\nsym('b', '.')`, /symlink a -> b\/\.\. points outside/],
    ['write through a symlink', `sym('s', 'dir')\nd('dir/')\nf('s/x')`, /entry s\/x lies below s, which is a symlink/],
    ['hardlink escaping', `hard('h', '../../etc/passwd')`, /hardlink h -> \.\.\/\.\.\/etc\/passwd: target contains a "\.\." component/],
    ['hardlink to absolute', `hard('h', '/etc/passwd')`, /hardlink h -> \/etc\/passwd: target is an absolute path/],
    ['hardlink to missing', `hard('h', 'nothere')`, /target is not a regular file earlier in the archive/],
    ['character device', `dev('null', tarfile.CHRTYPE)`, /entry null is a character-device/],
    ['block device', `dev('sda', tarfile.BLKTYPE)`, /entry sda is a block-device/],
    ['fifo', `dev('p', tarfile.FIFOTYPE)`, /entry p is a fifo/],
    ['duplicate entry', `f('a', b'1')\nf('a', b'2')`, /duplicate entry a/],
    ['file then dir of same name', `f('a')\nd('a/')`, /duplicate entry a/],
  ];
  for (const [name, members, msg] of cases) {
    test(`rejects ${name} (exit 32) and writes nothing`, async () => {
      const { err, left } = await attempt(members);
      expect(err).toBeInstanceOf(KbundleError);
      expect(err!.message).toMatch(msg);
      expect(err!.message.startsWith('evil.tar: ')).toBe(true);
      expect(err!.exitCode).toBe(32);
      expect(left).toEqual([]);
    });
  }

  test('rejects an oversize entry from its header (exit 37)', async () => {
    const { err, left } = await attempt(`f('big', b'x' * 5000)`, { maxEntrySize: 4096 });
    expect(err!.message).toBe('evil.tar: entry big is 5000 bytes, over the 4096-byte limit');
    expect(err!.exitCode).toBe(37);
    expect(left).toEqual([]);
  });

  test('rejects a total over the limit', async () => {
    const { err } = await attempt(`f('a', b'x' * 3000)\nf('b', b'x' * 3000)`, { maxTotalSize: 5000 });
    expect(err!.message).toBe('evil.tar: contents exceed the 5000-byte limit');
  });

  test('a truncated tar fails and leaves nothing', async () => {
    const d = tmp();
    pyTar(join(d, 'ok.tar'), `f('a', b'x' * 10000)`);
    const cut = readFileSync(join(d, 'ok.tar')).subarray(0, 3000);
    const { Readable } = await import('node:stream');
    const err = await safeExtract(Readable.from([cut]), join(d, 'out')).catch((e: KbundleError) => e);
    expect((err as KbundleError).exitCode).toBe(32);
    expect((err as Error).message).toMatch(/truncated or not a tar archive/);
    expect(existsSync(join(d, 'out'))).toBe(false);
    expect(readdirSync(d)).toEqual(['ok.tar']);
  });

  test('refuses to extract over an existing destination', async () => {
    const d = tmp();
    pyTar(join(d, 'ok.tar'), `f('a')`);
    const err = await safeExtract(createReadStream(join(d, 'ok.tar')), d).catch((e: KbundleError) => e);
    expect((err as Error).message).toMatch(/already exists/);
  });
});
