// Crafted bad bundles: each is refused with its exit code and message, and the
// scratch root (DKMS tree, sources, modules) is byte-for-byte unchanged.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { canonicalJsonBytes } from '../../src/bundle/model/canonical-json.js';
import { kbundle } from '../helpers/scratch.js';
import { buildBundle, craftTar, K612, resignWithSource, rewriteTar, snapshot, targetRoot, trust } from './helpers.js';

let good: string;
let dir: string;
beforeAll(() => {
  good = buildBundle([K612]);
  dir = targetRoot(K612).root;
});

function refused(file: string, code: number, message: RegExp | string, env: NodeJS.ProcessEnv = {}): void {
  const s = targetRoot(K612);
  const before = snapshot(s.root);
  const r = kbundle(['bundle', 'install', file, '-k', K612, ...s.treeArgs, ...trust], env);
  expect(r.code, r.stderr).toBe(code);
  if (typeof message === 'string') expect(r.stderr).toContain(message);
  else expect(r.stderr).toMatch(message);
  expect(snapshot(s.root)).toEqual(before);
}

const memberOffset = (file: string, member: string) =>
  Number(spawnSync('python3', ['-c', 'import tarfile,sys; print(tarfile.open(sys.argv[1]).getmember(sys.argv[2]).offset_data)', file, member], { encoding: 'utf8' }).stdout.trim());

function blobMembers(file: string): string[] {
  return spawnSync('tar', ['-tf', file], { encoding: 'utf8' }).stdout.split('\n').filter((n) => /^blobs\/sha256\/[0-9a-f]{64}$/.test(n));
}

describe('bundle install refuses bad input and writes nothing', () => {
  test('tampered module blob → 31', () => {
    const out = join(dir, 'blob.kbundle');
    copyFileSync(good, out);
    // The largest blob is a module.
    const sizes = blobMembers(out).map((m) => [m, Number(spawnSync('python3', ['-c', 'import tarfile,sys; print(tarfile.open(sys.argv[1]).getmember(sys.argv[2]).size)', out, m], { encoding: 'utf8' }).stdout)] as const);
    const [member] = sizes.sort((a, b) => b[1] - a[1])[0]!;
    const buf = readFileSync(out);
    buf[memberOffset(out, member) + 100] ^= 1;
    writeFileSync(out, buf);
    refused(out, 31, new RegExp(`blob sha256:${member.slice(13)} is corrupt`));
    refused(out, 31, new RegExp(`blob sha256:${member.slice(13)} is corrupt`), { KBUNDLE_WORKER_MIN_BYTES: '0' });
  });

  test('tampered index (re-hashed, not re-signed) → 30', async () => {
    const out = join(dir, 'index.kbundle');
    await rewriteTar(good, out, (e) => {
      const top = JSON.parse(e.get('index.json')!.toString());
      const d = top.manifests[0].digest as string;
      const idx = JSON.parse(e.get(`blobs/sha256/${d.slice(7)}`)!.toString());
      idx.annotations['org.opencontainers.image.version'] = '9.9';
      const bytes = canonicalJsonBytes(idx);
      const nd = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      e.delete(`blobs/sha256/${d.slice(7)}`);
      e.set(`blobs/sha256/${nd.slice(7)}`, bytes);
      top.manifests[0] = { ...top.manifests[0], digest: nd, size: bytes.length };
      e.set('index.json', canonicalJsonBytes(top));
    });
    refused(out, 30, /signature/);
  });

  test('truncated file → 32', () => {
    const out = join(dir, 'cut.kbundle');
    copyFileSync(good, out);
    truncateSync(out, Math.floor(readFileSync(good).length / 2) + 3);
    refused(out, 32, 'truncated archive');
  });

  test('duplicate entries and unknown media types → 32 / 35', async () => {
    const dup = join(dir, 'dup.kbundle');
    copyFileSync(good, dup);
    spawnSync('python3', ['-c', `
import tarfile,sys,io
t=tarfile.open(sys.argv[1],'a'); i=tarfile.TarInfo('oci-layout'); d=b'{"imageLayoutVersion":"1.0.0"}'; i.size=len(d); t.addfile(i,io.BytesIO(d)); t.close()`, dup]);
    refused(dup, 32, 'duplicate entry oci-layout');
    const weird = join(dir, 'weird.kbundle');
    await rewriteTar(good, weird, (e) => {
      const top = JSON.parse(e.get('index.json')!.toString());
      top.manifests[0].mediaType = 'application/x-unknown';
      e.set('index.json', canonicalJsonBytes(top));
    });
    refused(weird, 35, 'unknown media type "application/x-unknown"');
  });

  // Signed with the real key, so only the installer's own checks stand between these and the disk.
  const evilSources: Array<[string, string, number, RegExp]> = [
    ['dot-dot', "d('hello-1.0/'); f('hello-1.0/dkms.conf'); f('hello-1.0/../../evil')", 32, /\.\./],
    ['absolute', "d('hello-1.0/'); f('hello-1.0/dkms.conf'); f('/etc/evil')", 32, /absolute/],
    ['symlink escape', "d('hello-1.0/'); f('hello-1.0/dkms.conf'); f('hello-1.0/l', b'', type=tarfile.SYMTYPE, linkname='../../../etc')", 32, /link/],
    ['hardlink escape', "d('hello-1.0/'); f('hello-1.0/dkms.conf'); f('hello-1.0/h', b'', type=tarfile.LNKTYPE, linkname='../../etc/passwd')", 32, /link/],
    ['device node', "d('hello-1.0/'); f('hello-1.0/dkms.conf'); f('hello-1.0/dev', b'', type=tarfile.CHRTYPE, devmajor=1, devminor=3)", 32, /device|not allowed|type/],
    ['duplicate', "d('hello-1.0/'); f('hello-1.0/dkms.conf'); f('hello-1.0/dkms.conf', b'y')", 32, /duplicate/],
  ];
  // Large bundles read on worker threads (scan, module copies, source decompression); 0 takes those paths here too.
  const threaded = { KBUNDLE_WORKER_MIN_BYTES: '0' };
  for (const [what, spec, code, msg] of evilSources) {
    test(`source tar with ${what} → ${code} (main thread, and threaded)`, async () => {
      const out = join(dir, `${what.replace(/ /g, '-')}.kbundle`);
      await resignWithSource(good, out, craftTar(spec));
      refused(out, code, msg);
      refused(out, code, msg, threaded);
    });
  }

  test('zstd source that expands past its declared size → 37 (main thread, and threaded)', async () => {
    const out = join(dir, 'bomb.kbundle');
    const plain = craftTar(`d('hello-1.0/'); f('hello-1.0/dkms.conf', b'PACKAGE_NAME=hello\\n'); f('hello-1.0/big', b'\\0' * 4000000)`);
    await resignWithSource(good, out, plain, 20_000);
    refused(out, 37, 'decompressed output exceeds the declared 20000 bytes');
    refused(out, 37, 'decompressed output exceeds the declared 20000 bytes', threaded);
  });
});
