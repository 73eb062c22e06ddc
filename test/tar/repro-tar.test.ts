import { spawnSync } from 'node:child_process';
import { createReadStream, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { digestStream } from '../../src/bundle/model/digest.js';
import { packDirectory, reproTar } from '../../src/tar/repro-tar.js';
import { safeExtract } from '../../src/tar/safe-extract.js';
import { makeSourceTree, tmp } from '../bundle/fixtures.js';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';

describe('reproducible tar', () => {
  test('same tree with different mtimes and umask-style modes → identical bytes', async () => {
    const a = makeSourceTree(tmp(), { mtime: 1_000_000, fileMode: 0o600 });
    const b = makeSourceTree(tmp(), { mtime: 1_600_000_000, fileMode: 0o664 });
    const da = await digestStream(packDirectory(a, { mtime: 1700000000, prefix: 'hello-1.0' }));
    const db = await digestStream(packDirectory(b, { mtime: 1700000000, prefix: 'hello-1.0' }));
    expect(da).toEqual(db);
    const dc = await digestStream(packDirectory(b, { mtime: 1700000001, prefix: 'hello-1.0' }));
    expect(dc.digest).not.toBe(da.digest);
  });

  test('GNU tar reads it: sorted paths, owner 0/0, normalised modes, dotfiles, exec bits, symlinks', async () => {
    const d = tmp();
    const src = makeSourceTree(d, { fileMode: 0o600 });
    await pipeline(packDirectory(src, { mtime: 1700000000, prefix: 'hello-1.0' }), createWriteStream(join(d, 's.tar')));
    const r = spawnSync('tar', ['--numeric-owner', '--full-time', '-tvf', join(d, 's.tar')], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => l.replace(/\s+/g, ' '));
    expect(lines).toEqual([
      'drwxr-xr-x 0/0 0 2023-11-14 22:13:20 hello-1.0/',
      '-rw-r--r-- 0/0 9 2023-11-14 22:13:20 hello-1.0/.gitignore',
      '-rw-r--r-- 0/0 17 2023-11-14 22:13:20 hello-1.0/Makefile',
      '-rwxr-xr-x 0/0 18 2023-11-14 22:13:20 hello-1.0/configure.sh',
      '-rw-r--r-- 0/0 130 2023-11-14 22:13:20 hello-1.0/dkms.conf',
      'lrwxrwxrwx 0/0 0 2023-11-14 22:13:20 hello-1.0/hello.c -> src/hello.c',
      'drwxr-xr-x 0/0 0 2023-11-14 22:13:20 hello-1.0/src/',
      '-rw-r--r-- 0/0 49 2023-11-14 22:13:20 hello-1.0/src/hello.c',
    ]);
    // And our own extractor accepts what our writer makes.
    const entries = await safeExtract(createReadStream(join(d, 's.tar')), join(d, 'x'));
    expect(entries).toHaveLength(8);
  });

  test('sorts full paths by bytes, so "dir-x" lands between "dir/" and "dir/x" (not per directory as GNU --sort=name)', async () => {
    const d = tmp();
    await pipeline(
      reproTar(
        [
          { type: 'file', path: 'dir/x', data: Buffer.from('1') },
          { type: 'file', path: 'dir-x', data: Buffer.from('2') },
          { type: 'dir', path: 'dir' },
        ],
        { mtime: 0 },
      ),
      createWriteStream(join(d, 'o.tar')),
    );
    expect(spawnSync('tar', ['-tf', join(d, 'o.tar')], { encoding: 'utf8' }).stdout).toBe('dir/\ndir-x\ndir/x\n');
  });

  test('refuses a symlink pointing outside the tree', async () => {
    const d = tmp();
    const src = join(d, 'src');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'a'), 'a');
    symlinkSync('../../etc/passwd', join(src, 'sub', 'bad'));
    await expect(digestStream(packDirectory(src, { mtime: 0 }))).rejects.toThrow(`${join(src, 'sub/bad')}: symlink to "../../etc/passwd" points outside ${src}; refusing to pack it`);
    symlinkSync('/etc/passwd', join(d, 'abs'));
  });

  test('refuses negative or fractional mtime', () => {
    expect(() => reproTar([], { mtime: -1 })).toThrow(/non-negative integer/);
    expect(() => reproTar([], { mtime: 1.5 })).toThrow(/non-negative integer/);
  });
});
