// The packer's fast path: its own ustar encoder, zstd on a worker thread,
// blobs copied by identity, and the bundle file written in parts.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, test } from 'vitest';
import { BundleFile } from '../../src/bundle/write/bundle-file.js';
import { hashFile } from '../../src/bundle/model/digest.js';
import { ZstdWorker } from '../../src/bundle/write/zstd-worker.js';
import { Chunker } from '../../src/bundle/write/chunker.js';
import { encodeHeader, type UstarHeader } from '../../src/tar/ustar.js';
import { compressStream } from '../../src/bundle/model/zstd.js';
import { KbundleError } from '../../src/util/errors.js';
import { openBundle } from '../../src/bundle/read/open.js';
import { copyBlobsFromArchive, readBlobFromArchive } from '../../src/bundle/read/reader.js';
import { scanArchive } from '../../src/bundle/read/scan.js';
import { walkArchive } from '../../src/tar/walk.js';

/** Blob offsets as the scan's header walk finds them. */
const locateBlobs = async (file: string) => (await scanArchive(file)).offsets;
import { writeBundle } from '../../src/bundle/write/writer.js';
import { makeSourceTree, realModules, rewriteWithPython, spec, target, testKeys, tmp } from './fixtures.js';

const K = '6.1.0-56-amd64';

async function collect(stream: NodeJS.ReadableStream | AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

/** What tar-stream (the writer bundles were made with before ustar.ts) emits for one header. */
async function tarStreamHeader(h: UstarHeader): Promise<Buffer> {
  const pack = tar.pack();
  const header = { name: h.name, type: h.type, mode: h.mode, size: h.size, mtime: new Date(h.mtime * 1000), uid: 0, gid: 0, uname: '', gname: '', linkname: h.linkname };
  if (h.type === 'file') pack.entry(header, Buffer.alloc(h.size));
  else pack.entry(header);
  pack.finalize();
  const all = await collect(pack as unknown as AsyncIterable<Buffer>);
  // Header block(s) only: drop the content, its padding and the two end blocks.
  const content = h.type === 'file' ? Math.ceil(h.size / 512) * 512 : 0;
  return all.subarray(0, all.length - content - 1024);
}

describe('ustar header encoder', () => {
  const long = (c: string, n: number) => c.repeat(n);
  const cases: UstarHeader[] = [
    { name: 'blobs/', type: 'directory', mode: 0o755, size: 0, mtime: 1700000000 },
    { name: `blobs/sha256/${long('a', 64)}`, type: 'file', mode: 0o644, size: 12345, mtime: 1700000000 },
    { name: 'x/run.sh', type: 'file', mode: 0o755, size: 0, mtime: 0 },
    { name: 'x/link', type: 'symlink', mode: 0o777, size: 0, mtime: 5, linkname: '../y/z' },
    // ustar prefix split, then pax for what does not fit
    { name: `${long('d', 60)}/${long('e', 70)}/${long('f', 80)}`, type: 'file', mode: 0o644, size: 3, mtime: 1 },
    { name: `${long('d', 160)}/${long('e', 20)}`, type: 'file', mode: 0o644, size: 3, mtime: 1 },
    { name: long('x', 120), type: 'file', mode: 0o644, size: 3, mtime: 1 },
    { name: 'ünïcode.c', type: 'file', mode: 0o644, size: 3, mtime: 1 },
    { name: 'ulink', type: 'symlink', mode: 0o777, size: 0, mtime: 1, linkname: 'ünïcode.c' },
    { name: 'longlink', type: 'symlink', mode: 0o777, size: 0, mtime: 1, linkname: long('t/', 80) },
    { name: `${long('p', 300)}-with-a-long-link`, type: 'symlink', mode: 0o777, size: 0, mtime: 1, linkname: long('q', 150) },
  ];
  for (const h of cases) {
    test(`same bytes as tar-stream: ${h.type} ${h.name.slice(0, 24)}… (${Buffer.byteLength(h.name)} bytes)`, async () => {
      expect(encodeHeader(h).equals(await tarStreamHeader(h))).toBe(true);
    });
  }
});

describe('zstd on the worker thread', () => {
  test('writes the same frame as compressStream, whatever the chunking', async () => {
    const d = tmp();
    const input = Buffer.concat(Array.from({ length: 300 }, (_, i) => Buffer.from(`line ${i} ${'abc'.repeat(i % 50)}\n`.repeat(200))));
    const ref = await collect(Readable.from([input]).pipe(compressStream(3)));
    const w = ZstdWorker.start();
    try {
      const job = w.compressTo(join(d, 'out.zst'), 3);
      const chunker = new Chunker(64 << 10);
      for (let off = 0; off < input.length; off += 10_000) for (const c of chunker.push(input.subarray(off, off + 10_000))) await job.write(c);
      const last = chunker.flush();
      if (last) await job.write(last);
      const res = await job.end();
      const got = readFileSync(join(d, 'out.zst'));
      expect(got.equals(ref)).toBe(true);
      expect(res).toEqual({ digest: 'sha256:' + createHash('sha256').update(ref).digest('hex'), size: ref.length });
    } finally {
      await w.close();
    }
  });

  test('a failure on the worker (output exists) rejects instead of hanging, with its code', async () => {
    const d = tmp();
    writeFileSync(join(d, 'taken.zst'), 'x');
    const w = ZstdWorker.start();
    try {
      const job = w.compressTo(join(d, 'taken.zst'), 3);
      const err = await (async () => {
        for (let i = 0; i < 8; i++) await job.write(Buffer.alloc(1 << 16, i));
        await job.end();
      })().catch((e: unknown) => e);
      expect((err as NodeJS.ErrnoException).code).toBe('EEXIST');
      expect(readFileSync(join(d, 'taken.zst'), 'utf8')).toBe('x');
    } finally {
      await w.close();
    }
  });
});

describe('bundle file', () => {
  test('a blob changed after it was hashed fails the write and leaves the old output alone', async () => {
    const d = tmp();
    const blob = join(d, 'module.ko');
    writeFileSync(blob, Buffer.alloc(3 << 20, 7));
    const h = await hashFile(blob);
    const out = join(d, 'bundle.tar');
    writeFileSync(out, 'previous bundle');
    // Same size, same bytes even: only the identity (mtime/ctime) says it was touched.
    utimesSync(blob, 1, 1);
    const f = await BundleFile.create(out);
    const err = await f
      .append([{ type: 'file', path: `blobs/sha256/${h.digest.slice(7)}`, file: blob, size: h.size, identity: h.identity }], 0)
      .catch((e: unknown) => e);
    await f.abort();
    expect(err).toBeInstanceOf(KbundleError);
    expect((err as KbundleError).message).toContain(`${blob} changed between hashing and packing`);
    expect((err as KbundleError).exitCode).toBe(31);
    expect(readFileSync(out, 'utf8')).toBe('previous bundle');
    expect(readdirSync(d).sort()).toEqual(['bundle.tar', 'module.ko']);
  });

  test('parts appended in order make one tar; the size reported is the file’s', async () => {
    const d = tmp();
    const blob = join(d, 'big.bin');
    writeFileSync(blob, Buffer.alloc((2 << 20) + 123, 9));
    const h = await hashFile(blob);
    const out = join(d, 'o.tar');
    const f = await BundleFile.create(out);
    await f.append([{ type: 'dir', path: 'blobs' }, { type: 'file', path: 'blobs/big', file: blob, size: h.size, identity: h.identity }], 1700000000);
    await f.append([{ type: 'file', path: 'index.json', data: Buffer.from('{}') }], 1700000000);
    const r = await f.commit();
    expect(r.size).toBe(readFileSync(out).length);
    expect(f.written).toEqual(['blobs', 'blobs/big', 'index.json']);
    const names: string[] = [];
    const ex = tar.extract();
    const done = (async () => {
      for await (const e of ex) {
        names.push(e.header.name);
        const body = await collect(e as unknown as AsyncIterable<Buffer>);
        if (e.header.name === 'blobs/big') expect(body.equals(readFileSync(blob))).toBe(true);
      }
    })();
    Readable.from([readFileSync(out)]).pipe(ex);
    await done;
    expect(names).toEqual(['blobs/', 'blobs/big', 'index.json']);
    expect(existsSync(out)).toBe(true);
  });
});

describe('reading blobs by offset', () => {
  let dir: string;
  let file: string;
  const { pk } = testKeys();

  beforeAll(async () => {
    dir = tmp();
    const mods = realModules().slice(0, 2);
    file = join(dir, 'b.tar');
    await writeBundle(spec(makeSourceTree(dir), [target(K, 'x86_64', mods)]), file);
  });

  test('the header walk finds every blob, at the offset python’s tarfile reports', async () => {
    const b = await openBundle(file, { trustedKeys: [pk] });
    const at = await locateBlobs(file);
    const r = spawnSync('python3', ['-c', 'import tarfile,sys\nfor m in tarfile.open(sys.argv[1]): print(m.name, m.offset_data)', file], { encoding: 'utf8' });
    const want = new Map(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(' '))
        .filter(([n]) => n!.startsWith('blobs/sha256/') && n!.length > 13)
        .map(([n, off]) => [`sha256:${n!.slice(13)}`, Number(off)]),
    );
    expect(want.size).toBeGreaterThan(5);
    expect(at).toEqual(want);
    const m = b.index.packages[0]!.targets[0]!.modules[0]!;
    const got = await collect(readBlobFromArchive(file, { digest: m.digest, size: m.size }, at.get(m.digest)));
    expect(createHash('sha256').update(got).digest('hex')).toBe(m.digest.slice(7));
  });

  test('a wrong offset cannot pass wrong bytes: the read fails its digest check (exit 31)', async () => {
    const at = await locateBlobs(file);
    const m = (await openBundle(file, { trustedKeys: [pk] })).index.packages[0]!.targets[0]!.modules[0]!;
    const err = await collect(readBlobFromArchive(file, { digest: m.digest, size: m.size }, at.get(m.digest)! + 512)).catch((e: unknown) => e);
    expect((err as Error).message).toContain(`content digest`);
    expect(err).toBeInstanceOf(KbundleError);
    expect((err as KbundleError).exitCode).toBe(31);
  });

  test('a bundle rewritten by another tar writer (pax headers on every entry) still opens and unpacks', async () => {
    const other = join(dir, 'pax.tar');
    rewriteWithPython(file, other, 'PAX_FORMAT', { each: 'm.pax_headers={"comment":"rewritten"}' });
    const at = await locateBlobs(other);
    expect(at.size).toBe((await locateBlobs(file)).size);
    const b = await openBundle(other, { trustedKeys: [pk] });
    const entries = await b.extractSource('hello', join(dir, 'src-pax'));
    expect(entries.map((e) => e.path)).toContain('hello-1.0/dkms.conf');
    const digests = b.index.packages[0]!.targets[0]!.modules.map((m) => m.digest);
    await b.copyBlobsTo(join(dir, 'mods-pax'), digests);
    for (const d of digests) expect('sha256:' + createHash('sha256').update(readFileSync(join(dir, 'mods-pax', d.slice(7)))).digest('hex')).toBe(d);
  });

  test('a header the walk does not follow (GNU long name) ends it; without offsets blobs are read by parsing the archive', async () => {
    const gnu = join(dir, 'gnu.tar');
    rewriteWithPython(file, gnu, 'GNU_FORMAT', { first: 't=tarfile.TarInfo("x"*120); dst.addfile(t, io.BytesIO(b""))' });
    expect(walkArchive(gnu).entries).toEqual([]);
    const t = (await openBundle(file, { trustedKeys: [pk] })).index.packages[0]!.targets[0]!;
    await copyBlobsFromArchive(file, new Map(t.modules.map((m) => [m.digest, m.size])), join(dir, 'mods-scan'));
    for (const m of t.modules) {
      expect('sha256:' + createHash('sha256').update(readFileSync(join(dir, 'mods-scan', m.digest.slice(7)))).digest('hex')).toBe(m.digest);
      expect((await collect(readBlobFromArchive(file, { digest: m.digest, size: m.size }))).length).toBe(m.size);
    }
  });
});

describe('a full disk', () => {
  // A 1 MiB tmpfs as the output directory: the write fails part-way with ENOSPC.
  function smallDisk(): { dir: string; done: () => void } {
    const dir = tmp('kbundle-full-');
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`this test mounts a small tmpfs and needs root: ${r.stderr}`);
    return { dir, done: () => void spawnSync('umount', [dir]) };
  }

  for (const where of ['module copy (main thread)', 'source compression (worker thread)'] as const) {
    test(`fails with ENOSPC in the ${where}, leaving no output and no temp files`, async () => {
      const d = tmp();
      const src = makeSourceTree(d);
      const big = randomBytes(3 << 20);
      const mod = join(d, 'big.ko');
      if (where.startsWith('module')) writeFileSync(mod, Buffer.concat([Buffer.from('\x7fELF', 'latin1'), big]));
      else {
        writeFileSync(join(src, 'blob.bin'), big);
        writeFileSync(mod, Buffer.from('\x7fELF tiny module', 'latin1'));
      }
      const disk = smallDisk();
      try {
        const out = join(disk.dir, 'b.kbundle');
        const err = await writeBundle(spec(src, [{ ...target(K, 'x86_64', [mod]) }]), out).catch((e: unknown) => e);
        expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
        expect(readdirSync(disk.dir)).toEqual([]);
      } finally {
        disk.done();
      }
    });
  }
});
