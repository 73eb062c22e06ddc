// The unpacker's fast path: the header walk, the scan from offsets (hashing
// shared with a worker), the synchronous tar reader, and the worker threads
// that decompress the source and copy module blobs.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { walkArchive } from '../../src/tar/walk.js';
import { openBundle } from '../../src/bundle/read/open.js';
import { setWorkerMinBytes, workerMinBytes } from '../../src/bundle/read/range-thread.js';
import { scanArchive } from '../../src/bundle/read/scan.js';
import { TarFormatError, TarParser, type TarHeader } from '../../src/tar/parse.js';
import { writeBundle } from '../../src/bundle/write/writer.js';
import { KbundleError } from '../../src/util/errors.js';
import { kbundle } from '../helpers/scratch.js';
import { makeSourceTree, realModules, rewriteWithPython, spec, target, testKeys, tmp } from './fixtures.js';

const K = '6.1.0-56-amd64';
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function py(script: string, ...args: string[]): void {
  const r = spawnSync('python3', ['-c', script, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
}

type Seen = Pick<TarHeader, 'name' | 'type' | 'size' | 'mode' | 'linkname'> & { mtime: number; data: string };

/** Every entry as tar-stream reads it. */
async function viaTarStream(bytes: Buffer): Promise<Seen[]> {
  const out: Seen[] = [];
  const x = tar.extract();
  Readable.from([bytes]).pipe(x);
  for await (const e of x) {
    const parts: Buffer[] = [];
    for await (const c of e as AsyncIterable<Buffer>) parts.push(c);
    const h = e.header;
    out.push({ name: h.name, type: h.type as TarHeader['type'], size: h.size!, mode: h.mode!, linkname: h.linkname ?? null, mtime: h.mtime!.getTime(), data: sha(Buffer.concat(parts)) });
  }
  return out;
}

/** Every entry as TarParser reads it, fed in pieces of `step` bytes. */
function viaParser(bytes: Buffer, step: number): Seen[] {
  const out: Seen[] = [];
  let parts: Buffer[] = [];
  let cur: TarHeader | null = null;
  const p = new TarParser({
    entry: (h) => {
      cur = h;
      parts = [];
    },
    data: (piece) => parts.push(Buffer.from(piece)),
    end: () => {
      const h = cur!;
      out.push({ name: h.name, type: h.type, size: h.size, mode: h.mode, linkname: h.linkname, mtime: h.mtime.getTime(), data: sha(Buffer.concat(parts)) });
    },
  });
  for (let i = 0; i < bytes.length; i += step) p.feed(bytes.subarray(i, i + step));
  p.finish();
  return out;
}

describe('TarParser reads what tar-stream reads', () => {
  const members = `
def f(name, data=b'x', **kw):
    i = tarfile.TarInfo(name); i.size = len(data); i.mtime = 1234567; i.mode = 0o640
    for k, v in kw.items(): setattr(i, k, v)
    t.addfile(i, io.BytesIO(data) if i.type in (tarfile.REGTYPE, tarfile.AREGTYPE) else None)
f('d/', b'', type=tarfile.DIRTYPE, mode=0o755)
f('d/a.c', b'int a;' * 300, mode=0o755)
f('d/' + 'long' * 40 + '.h', b'long name')
f('d/' + 'x' * 90 + '/' + 'y' * 60, b'prefix split')
f('d/ünï.c', b'utf8 name')
f('d/empty', b'')
f('d/sym', b'', type=tarfile.SYMTYPE, linkname='a.c')
f('d/longsym', b'', type=tarfile.SYMTYPE, linkname='t/' * 70)
f('d/hard', b'', type=tarfile.LNKTYPE, linkname='d/a.c')
f('d/fifo', b'', type=tarfile.FIFOTYPE)
f('d/big', bytes(range(256)) * 700)
`;
  for (const format of ['GNU_FORMAT', 'PAX_FORMAT', 'USTAR_FORMAT']) {
    test(`${format}: same entries, names, types, modes, times, links and bytes, fed whole or a byte at a time`, async () => {
      const d = tmp();
      const file = join(d, 't.tar');
      // USTAR cannot hold the long names; it gets the members that fit.
      const body = format === 'USTAR_FORMAT' ? members.split('\n').filter((l) => !/long|'x' \* 90|ünï/.test(l)).join('\n') : members;
      py(`import tarfile,io,sys\nt = tarfile.open(sys.argv[1], 'w', format=tarfile.${format})\n${body}\nt.close()`, file);
      const bytes = readFileSync(file);
      const want = await viaTarStream(bytes);
      expect(want.length).toBeGreaterThan(format === 'USTAR_FORMAT' ? 5 : 8);
      expect(viaParser(bytes, bytes.length)).toEqual(want);
      expect(viaParser(bytes, 1)).toEqual(want);
      expect(viaParser(bytes, 700)).toEqual(want);
    });
  }

  test('a pax global header applies to every later entry, as in tar-stream', async () => {
    const d = tmp();
    const file = join(d, 'g.tar');
    py(
      `import tarfile,io,sys\nt = tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT, pax_headers={'comment': 'x'})\nfor n in ('a', 'b'):\n    i = tarfile.TarInfo(n); i.size = 1; t.addfile(i, io.BytesIO(b'z'))\nt.close()`,
      file,
    );
    const bytes = readFileSync(file);
    expect(viaParser(bytes, 3)).toEqual(await viaTarStream(bytes));
  });

  test('truncated, corrupt and unknown-format input is refused', () => {
    const d = tmp();
    const file = join(d, 't.tar');
    py(`import tarfile,io,sys\nt = tarfile.open(sys.argv[1], 'w')\ni = tarfile.TarInfo('a'); i.size = 5000; t.addfile(i, io.BytesIO(b'q' * 5000))\nt.close()`, file);
    const bytes = readFileSync(file);
    const sink = { entry: () => undefined, data: () => undefined, end: () => undefined };
    const cut = new TarParser(sink);
    cut.feed(bytes.subarray(0, 3000));
    expect(() => cut.finish()).toThrow(/Unexpected end of data/);
    const flipped = Buffer.from(bytes);
    flipped[10] ^= 1;
    expect(() => new TarParser(sink).feed(flipped)).toThrow(TarFormatError);
    const v7 = Buffer.from(bytes);
    v7.write('\0\0\0\0\0\0\0\0', 257, 'latin1');
    // Re-checksum so only the format is wrong.
    v7.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += v7[i]!;
    v7.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
    expect(() => new TarParser(sink).feed(v7)).toThrow(/unknown format/);
  });
});

describe('walking and scanning a bundle', () => {
  let dir: string;
  let file: string;
  beforeAll(async () => {
    dir = tmp();
    file = join(dir, 'b.kbundle');
    await writeBundle(spec(makeSourceTree(dir), [target(K, 'x86_64', realModules().slice(0, 2))]), file);
  });
  afterEach(() => setWorkerMinBytes(32 << 20));

  test('kbundle’s own bundles are walked whole; the scan from offsets learns what the streaming scan learns', async () => {
    expect(walkArchive(file).complete).toBe(true);
    // A GNU-format rewrite is not walked, so it goes through the streaming scan.
    const gnu = join(dir, 'gnu.kbundle');
    rewriteWithPython(file, gnu, 'GNU_FORMAT');
    expect(walkArchive(gnu).complete).toBe(false);
    const [a, b] = [await scanArchive(file), await scanArchive(gnu)];
    expect(a.offsets.size).toBe(a.blobs.size);
    // The walk stops at the first GNU header, so no blob there has an offset.
    expect(b.offsets.size).toBe(0);
    expect(a.blobs).toEqual(b.blobs);
    expect(a.small).toEqual(b.small);
    expect(a.indexJson.equals(b.indexJson)).toBe(true);
    setWorkerMinBytes(0);
    const c = await scanArchive(file);
    expect(c.blobs).toEqual(a.blobs);
  });

  test('trailing data, a corrupt header or a truncated member end the walk, and the streaming scan gives its verdict', async () => {
    const bytes = readFileSync(file);
    const trailing = join(dir, 'trailing.kbundle');
    writeFileSync(trailing, Buffer.concat([bytes, Buffer.from('junk after the end')]));
    expect(walkArchive(trailing).complete).toBe(false);
    const cut = join(dir, 'cut.kbundle');
    writeFileSync(cut, bytes.subarray(0, bytes.length - 4096));
    expect(walkArchive(cut).complete).toBe(false);
    const err = await scanArchive(cut).catch((e: unknown) => e as KbundleError);
    expect(err).toBeInstanceOf(KbundleError);
    expect((err as KbundleError).message).toMatch(/truncated archive|not a valid tar archive/);
    const badSum = join(dir, 'badsum.kbundle');
    const flipped = Buffer.from(bytes);
    flipped[1024 + 5] ^= 1; // a name byte in the third header
    writeFileSync(badSum, flipped);
    expect(walkArchive(badSum).complete).toBe(false);
    expect(((await scanArchive(badSum).catch((e: unknown) => e)) as KbundleError).exitCode).toBe(32);
  });

  test('a missing file or a directory: exit 32 and one line saying so, from the library and the CLI', async () => {
    for (const f of [join(dir, 'missing.kbundle'), dir]) {
      const err = (await scanArchive(f).catch((e: unknown) => e)) as KbundleError;
      expect(err).toBeInstanceOf(KbundleError);
      expect(err.exitCode).toBe(32);
      expect(err.message).toMatch(new RegExp(`^${f.replace(/[.]/g, '\\.')}: cannot be read as a bundle \\((ENOENT|EISDIR)`));
      const r = kbundle(['bundle', 'ls', f]);
      expect(r.code).toBe(32);
      expect(r.stderr).toContain('cannot be read as a bundle');
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  test('a blob hashed on the worker thread that does not match its name: exit 31, named', async () => {
    setWorkerMinBytes(0);
    // The largest blob is always the worker's (it takes the biggest first, up to half the bytes).
    const scan = await scanArchive(file);
    const [digest] = [...scan.blobs].sort((x, y) => y[1] - x[1])[0]!;
    const bad = join(dir, 'badblob.kbundle');
    const bytes = Buffer.from(readFileSync(file));
    bytes[scan.offsets.get(digest)! + 200] ^= 1;
    writeFileSync(bad, bytes);
    const err = (await scanArchive(bad).catch((e: unknown) => e)) as KbundleError;
    expect(err.exitCode).toBe(31);
    expect(err.message).toContain(`blob ${digest} is corrupt`);
  });
});

describe('unpacking on worker threads', () => {
  let dir: string;
  let file: string;
  const { pk } = testKeys();
  beforeAll(async () => {
    dir = tmp();
    file = join(dir, 'b.kbundle');
    await writeBundle(spec(makeSourceTree(dir), [target(K, 'x86_64', realModules().slice(0, 3))]), file);
  });
  afterEach(() => setWorkerMinBytes(32 << 20));

  /** Everything under `root` as path → kind, mode, mtime (unless `times` is false) and bytes or link target. */
  function tree(root: string, times = true): Record<string, string> {
    const out: Record<string, string> = {};
    const walk = (rel: string) => {
      for (const n of readdirSync(join(root, rel)).sort()) {
        const r = rel ? `${rel}/${n}` : n;
        const st = lstatSync(join(root, r));
        const meta = `${(st.mode & 0o7777).toString(8)}${times ? ` ${st.mtimeMs}` : ''}`;
        if (st.isSymbolicLink()) out[r] = `link ${readlinkSync(join(root, r))}`;
        else if (st.isDirectory()) {
          out[r] = `dir ${meta}`;
          walk(r);
        } else out[r] = `file ${meta} ${sha(readFileSync(join(root, r)))}`;
      }
    };
    walk('');
    return out;
  }

  test('the threaded paths write exactly what the single-thread ones write', async () => {
    expect(workerMinBytes()).toBe(32 << 20);
    const one = await openBundle(file, { trustedKeys: [pk] });
    const digests = one.index.packages[0]!.targets[0]!.modules.map((m) => m.digest);
    await one.extractSource('hello', join(dir, 'one/src'));
    await one.copyBlobsTo(join(dir, 'one/mods'), digests);
    setWorkerMinBytes(0);
    const two = await openBundle(file, { trustedKeys: [pk] });
    const mods = two.copyBlobsTo(join(dir, 'two/mods'), digests);
    await two.extractSource('hello', join(dir, 'two/src'));
    await mods;
    expect(tree(join(dir, 'two/src'))).toEqual(tree(join(dir, 'one/src')));
    expect(tree(join(dir, 'two/mods'), false)).toEqual(tree(join(dir, 'one/mods'), false));
    expect(readdirSync(join(dir, 'two/mods')).sort()).toEqual(digests.map((d) => d.slice(7)).sort());
  });

  test('bytes changed after the scan: the source and the module copies fail with exit 31 and leave nothing', async () => {
    setWorkerMinBytes(0);
    const f = join(dir, 'changing.kbundle');
    copyFileSync(file, f);
    const b = await openBundle(f, { trustedKeys: [pk] });
    const scan = await scanArchive(f);
    const p = b.index.packages[0]!;
    const m = p.targets[0]!.modules[0]!;
    // Verified, then changed underneath (the same inode, as a writer racing the installer would).
    const bytes = readFileSync(f);
    bytes[scan.offsets.get(p.source.digest)! + Math.floor(p.source.size / 2)] ^= 0x55;
    bytes[scan.offsets.get(m.digest)! + 300] ^= 1;
    writeFileSync(f, bytes);
    const src = (await b.extractSource('hello', join(dir, 'x/src')).catch((e: unknown) => e)) as KbundleError;
    expect(src).toBeInstanceOf(KbundleError);
    expect(src.exitCode).toBe(31);
    expect(src.message).toMatch(/^source of hello 1\.0: /);
    const mods = (await b.copyBlobsTo(join(dir, 'x/mods'), [m.digest]).catch((e: unknown) => e)) as KbundleError;
    expect(mods.exitCode).toBe(31);
    expect(mods.message).toContain(`blob ${m.digest}`);
    // No source tree, no staging dir, no module file or .part.
    expect(readdirSync(join(dir, 'x')).sort()).toEqual(['mods']);
    expect(readdirSync(join(dir, 'x/mods'))).toEqual([]);
    expect(existsSync(join(dir, 'x/src'))).toBe(false);
  });
});
