// bundle build / verify / ls / merge through the CLI, with real builds.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUNDLE_PUB, EXAMPLE_KEYS, makeProject, unpackBundle } from '../helpers/bundles.js';
import { twoKernels } from '../helpers/kernels.js';
import { kbundle, REPO, sh } from '../helpers/scratch.js';

const [K1, K2] = twoKernels();
const sha = (f: string) => createHash('sha256').update(readFileSync(f)).digest('hex');
const EPOCH = { SOURCE_DATE_EPOCH: '1700000000' };
const MODULE = 'application/vnd.kbundle.module.v1';

describe('bundle build', () => {
  let proj: { dir: string; manifest: string };
  let whole: string;

  beforeAll(() => {
    proj = makeProject(['bundles/hello-1.0'], [K1, K2]);
    whole = join(proj.dir, 'whole.kbundle');
    const r = kbundle(['bundle', 'build', proj.manifest, '-o', whole, '-q'], EPOCH);
    if (r.code !== 0) throw new Error(r.stderr);
  });

  it('is reproducible: another directory, other mtimes, another umask, no cache -> same bytes', () => {
    const other = makeProject(['bundles/hello-1.0'], [K1, K2]);
    for (const f of readdirSync(join(other.dir, 'hello-1.0'))) utimesSync(join(other.dir, 'hello-1.0', f), new Date(), new Date(2001, 1, 1));
    const out = join(other.dir, 'again.kbundle');
    const r = sh('sh', ['-c', `umask 077 && exec node ${join(REPO, 'bin/kbundle')} bundle build ${other.manifest} -o ${out} --json --no-cache --cache-dir ${join(other.dir, 'cache')}`], EPOCH);
    expect(r.code, r.stderr).toBe(0);
    expect(sha(out)).toBe(sha(whole));
    // --json reports the file's own sha256 next to the root digest.
    const j = JSON.parse(r.stdout);
    expect(j.fileDigest).toBe(`sha256:${sha(out)}`);
    expect(j.size).toBe(readFileSync(out).length);
    expect(j.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('verify and ls: signer, kernels, modules; JSON for scripts', () => {
    const v = kbundle(['bundle', 'verify', whole, '--key', BUNDLE_PUB]);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).toContain('OK');
    const ls = JSON.parse(kbundle(['bundle', 'ls', whole, '--json', '--key', BUNDLE_PUB]).stdout);
    expect(ls.signatureChecked).toBe(true);
    expect(ls.kernels.sort()).toEqual([K1, K2].sort());
    expect(ls.targets.map((t: { kernel: string; modules: string[] }) => [t.kernel, t.modules])).toEqual(
      [K1, K2].sort().map((k) => [k, ['hello.ko']]),
    );
    expect(ls.targets[0].signer).toBe('kbundle example module signing key (DO NOT TRUST)');
    const table = kbundle(['bundle', 'ls', whole]).stdout;
    expect(table).toContain('NOT verified');
    expect(table).toMatch(new RegExp(`hello/1.0\\s+${K1.replace(/[.+]/g, '\\$&')}\\s+x86_64\\s+hello.ko`));
  });

  it('every module is signed: modinfo, openssl cms, and byte-identical to sign-file', () => {
    const { dir, blobs } = unpackBundle(whole);
    const mods = blobs.filter((b) => b.mediaType === MODULE);
    expect(mods.length).toBe(2);
    const signFile = ['/usr/lib/linux-kbuild-6.1/scripts/sign-file', ...readdirSync('/usr/lib').filter((n) => n.startsWith('linux-kbuild-')).map((n) => `/usr/lib/${n}/scripts/sign-file`)].find((p) => existsSync(p));
    expect(signFile, 'Debian linux-kbuild sign-file').toBeTruthy();
    sh('openssl', ['x509', '-inform', 'DER', '-in', join(EXAMPLE_KEYS, 'example-module.der'), '-out', join(dir, 'cert.pem')]);
    for (const m of mods) {
      const ko = `${m.path}.ko`;
      copyFileSync(m.path, ko);
      expect(sh('modinfo', ['-F', 'signer', ko]).stdout.trim()).toBe('kbundle example module signing key (DO NOT TRUST)');
      expect(sh('modinfo', ['-F', 'sig_hashalgo', ko]).stdout.trim()).toBe('sha256');
      const buf = readFileSync(ko);
      const n = buf.readUInt32BE(buf.length - 40 + 8);
      const body = buf.subarray(0, buf.length - 40 - n);
      writeFileSync(`${ko}.body`, body);
      writeFileSync(`${ko}.p7s`, buf.subarray(buf.length - 40 - n, buf.length - 40));
      const v = sh('openssl', ['cms', '-verify', '-binary', '-inform', 'DER', '-in', `${ko}.p7s`, '-content', `${ko}.body`, '-certfile', join(dir, 'cert.pem'), '-nointern', '-noverify', '-out', '/dev/null']);
      expect(v.code, v.stderr).toBe(0);
      copyFileSync(`${ko}.body`, `${ko}.resigned`);
      const s = sh(signFile!, ['sha256', join(EXAMPLE_KEYS, 'example-module.key'), join(EXAMPLE_KEYS, 'example-module.der'), `${ko}.resigned`]);
      expect(s.code, s.stderr).toBe(0);
      expect(readFileSync(`${ko}.resigned`).equals(buf)).toBe(true);
    }
  });

  it('verify catches a flipped byte in every blob kind and in the signature; truncation; wrong key', () => {
    const { blobs } = unpackBundle(whole);
    const kinds = new Map<string, string>();
    for (const b of blobs) if (!kinds.has(b.mediaType)) kinds.set(b.mediaType, b.digest);
    expect(kinds.size).toBeGreaterThanOrEqual(5);
    for (const [mediaType, digest] of kinds) {
      const bad = join(proj.dir, `flip-${digest.slice(7, 15)}.kbundle`);
      const bytes = readFileSync(whole);
      // Flip one byte inside that blob's data in the tar.
      const name = Buffer.from(`blobs/sha256/${digest.slice(7)}`);
      const hdr = bytes.indexOf(name);
      expect(hdr, mediaType).toBeGreaterThanOrEqual(0);
      const size = readFileSync(blobs.find((b) => b.digest === digest)!.path).length;
      bytes[hdr + 512 + Math.min(3, size - 1)] ^= 0x40;
      writeFileSync(bad, bytes);
      const r = kbundle(['bundle', 'verify', bad, '--key', BUNDLE_PUB]);
      expect(r.code, `${mediaType}: ${r.stderr}`).not.toBe(0);
      expect([30, 31, 35], `${mediaType} -> ${r.code}: ${r.stderr}`).toContain(r.code);
      // A flipped signature blob no longer matches its digest (31); a forged,
      // re-hashed signature is 30 (test/bundle covers that at library level).
      if (mediaType === MODULE) expect(r.stderr).toMatch(/digest|sha256/i);
    }
    const trunc = join(proj.dir, 'trunc.kbundle');
    writeFileSync(trunc, readFileSync(whole).subarray(0, 3000));
    expect(kbundle(['bundle', 'verify', trunc, '--key', BUNDLE_PUB]).code).toBe(32);
    const other = join(proj.dir, 'other');
    expect(kbundle(['bundle', 'keygen', other]).code).toBe(0);
    const wrong = kbundle(['bundle', 'verify', whole, '--key', `${other}.pub`]);
    expect(wrong.code).toBe(33);
    expect(wrong.stderr).toContain('not trusted');
    expect(kbundle(['bundle', 'verify', whole]).code).toBe(33);
  });

  it('two shards merged give the bytes of the whole build', () => {
    const a = join(proj.dir, 's1.kbundle');
    const b = join(proj.dir, 's2.kbundle');
    expect(kbundle(['bundle', 'build', proj.manifest, '--shard', '1/2', '-o', a, '-q'], EPOCH).code).toBe(0);
    expect(kbundle(['bundle', 'build', proj.manifest, '--shard', '2/2', '-o', b, '-q'], EPOCH).code).toBe(0);
    expect(JSON.parse(kbundle(['bundle', 'ls', a, '--json']).stdout).kernels.length).toBe(1);
    const merged = join(proj.dir, 'merged.kbundle');
    const r = kbundle(['bundle', 'merge', b, a, '-o', merged, '--sign-key', join(EXAMPLE_KEYS, 'example-bundle.key')]);
    expect(r.code, r.stderr).toBe(0);
    expect(sha(merged)).toBe(sha(whole));
  });

  it('skopeo reads the archive as an OCI layout', () => {
    const r = sh('skopeo', ['inspect', '--raw', `oci-archive:${whole}:hello:1.0`]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).mediaType).toBe('application/vnd.oci.image.index.v1+json');
  });
});

describe('bundle build: bad input', () => {
  it('a malformed manifest names file:line:col and what was expected', () => {
    const p = makeProject(['bundles/hello-1.0'], [K1]);
    writeFileSync(p.manifest, readFileSync(p.manifest, 'utf8').replace('arches: [x86_64]', 'arches: x86_64\nbogus: 1'));
    const r = kbundle(['bundle', 'build', p.manifest, '-o', join(p.dir, 'x.kbundle')]);
    expect(r.code).toBe(34);
    expect(r.stderr).toMatch(new RegExp(`${p.manifest.replace(/[.]/g, '\\.')}:\\d+:\\d+`));
    expect(r.stderr).toMatch(/bogus|additional/);
    expect(existsSync(join(p.dir, 'x.kbundle'))).toBe(false);
  });

  it('a kernel pattern that matches nothing, and a missing signing key, are clear errors', () => {
    const p = makeProject(['bundles/hello-1.0'], ['5.10.0-*-amd64']);
    const r = kbundle(['bundle', 'build', p.manifest, '-o', join(p.dir, 'x.kbundle')]);
    expect(r.code).toBe(36);
    expect(r.stderr).toContain('5.10.0-*-amd64');
    const q = makeProject(['bundles/hello-1.0'], [K1]);
    writeFileSync(q.manifest, readFileSync(q.manifest, 'utf8').replace('keys/example-module.key', 'keys/nope.key'));
    const s = kbundle(['bundle', 'build', q.manifest, '-o', join(q.dir, 'x.kbundle')]);
    expect(s.code).toBe(39);
    expect(s.stderr).toContain('nope.key');
    expect(existsSync(join(q.dir, 'x.kbundle'))).toBe(false);
  });

  it('one kernel failing: no bundle and its log named; --keep-going writes the rest and lists what is missing', () => {
    const k612 = [K1, K2].find((k) => k.startsWith('6.12'))!;
    const k61 = [K1, K2].find((k) => k !== k612)!;
    const p = makeProject(['test/fixtures/oldapi-1.0'], [k61, k612]);
    const out = join(p.dir, 'x.kbundle');
    const r = kbundle(['bundle', 'build', p.manifest, '-o', out, '-q']);
    expect(r.code).toBe(10);
    expect(r.stderr).toContain(`for kernel ${k612}`);
    const log = /Consult (\S+) for more information/.exec(r.stderr)?.[1];
    expect(log && readFileSync(log, 'utf8')).toContain('strlcpy');
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(p.dir).filter((n) => n.includes('.tmp'))).toEqual([]);

    const k = kbundle(['bundle', 'build', p.manifest, '-o', out, '-q', '--keep-going']);
    expect(k.code, k.stderr).toBe(0);
    expect(k.stderr).toContain(`missing from the bundle`);
    const ls = JSON.parse(kbundle(['bundle', 'ls', out, '--json', '--key', BUNDLE_PUB]).stdout);
    expect(ls.kernels).toEqual([k61]);
    expect(ls.metadata.missing).toBe(`oldapi@${k612}/x86_64`);
  });
});
