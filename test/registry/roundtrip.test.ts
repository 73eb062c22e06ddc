// bundle push / pull against a real registry (Debian's docker-registry, CNCF
// distribution 2.8) on loopback: byte-identical round trip that verifies,
// dedup (HEAD before upload), chunked uploads, basic and bearer-token auth,
// and the failures a user meets (wrong password, unknown tag, bytes the
// registry corrupted), each with its documented exit code.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/util/exit-codes.js';
import { unpackBundle } from '../helpers/bundles.js';
import { REPO } from '../helpers/scratch.js';
import { buildBundle, K55, K612, PUB } from '../deploy/helpers.js';
import { kb, selfSignedCert, sha256File, startRegistry, startTokenServer, type Registry, type TokenServer } from './registry.js';

const work = mkdtempSync(join(tmpdir(), 'kbundle-regtest-'));
const CREDS = { KBUNDLE_REGISTRY_USERNAME: 'builder', KBUNDLE_REGISTRY_PASSWORD: 'correct horse' };
const PLAIN = ['--plain-http'];

/** hello 1.1: the same module source, only the DKMS package version bumped (a packaging-only release). */
function hello11(): string {
  const dir = join(work, 'src', 'hello-1.1');
  cpSync(join(REPO, 'bundles/hello-1.0'), dir, { recursive: true });
  const conf = join(dir, 'dkms.conf');
  writeFileSync(conf, readFileSync(conf, 'utf8').replace('PACKAGE_VERSION="1.0"', 'PACKAGE_VERSION="1.1"'));
  return dir;
}

/** Config and layer blobs of a bundle file (what a push sends), digest → size, read with tar, not with kbundle. */
function pushableBlobs(file: string): Map<string, { size: number; mediaType: string }> {
  const { blobs } = unpackBundle(file);
  const out = new Map<string, { size: number; mediaType: string }>();
  for (const b of blobs) {
    if (b.mediaType === 'application/vnd.oci.image.manifest.v1+json' || b.mediaType === 'application/vnd.oci.image.index.v1+json') continue;
    out.set(b.digest, { size: readFileSync(b.path).length, mediaType: b.mediaType });
  }
  return out;
}

interface PushJson {
  digest: string;
  tag: string | null;
  blobs: { total: number; pushed: number; skipped: number };
  bytes: { total: number; uploaded: number; skipped: number };
  manifests: { total: number; pushed: number; skipped: number; bytes: number };
  referrer: { digest: string; via: string; tag?: string };
  upload: string;
  chunks: number;
  sentBytes: number;
}

let b10: string;
let b11: string;
let reg: Registry;

beforeAll(async () => {
  const t0 = Date.now();
  b10 = buildBundle([K55, K612]);
  b11 = buildBundle([K55, K612], { source: hello11() });
  process.stderr.write(`[registry] bundles built in ${Date.now() - t0} ms\n`);
  reg = await startRegistry({ kind: 'htpasswd', users: { builder: CREDS.KBUNDLE_REGISTRY_PASSWORD } });
});
afterAll(async () => {
  await reg?.stop();
});

async function push(file: string, ref: string, extra: string[] = []): Promise<PushJson> {
  const r = await kb(['bundle', 'push', file, ref, ...PLAIN, '--json', ...extra], { env: CREDS });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as PushJson;
}

describe('push and pull (htpasswd)', () => {
  it('round trip: the pulled file is byte-identical and verifies with the key', async () => {
    const res = await push(b10, `${reg.host}/kbundle/hello`, ['--key', PUB]);
    const blobs = pushableBlobs(b10);
    expect(res.tag).toBe('1.0'); // the bundle's version, as no tag was given
    expect(res.blobs).toEqual({ total: blobs.size, pushed: blobs.size, skipped: 0 });
    expect(res.bytes.uploaded).toBe([...blobs.values()].reduce((n, b) => n + b.size, 0));
    // distribution 2.8 has no referrers API: the signature is listed under the fallback tag.
    expect(res.referrer.via).toBe('tag-schema');
    expect(res.referrer.tag).toBe(res.digest.replace(':', '-'));

    const out = join(work, 'pulled-1.0.kbundle');
    const p = await kb(['bundle', 'pull', `${reg.host}/kbundle/hello:1.0`, '-o', out, '--key', PUB, ...PLAIN, '--json'], { env: CREDS });
    expect(p.code).toBe(0);
    const pj = JSON.parse(p.stdout) as { digest: string; signatureChecked: boolean; signature: { via: string } };
    expect(pj.digest).toBe(res.digest);
    expect(pj.signatureChecked).toBe(true);
    expect(pj.signature.via).toBe('tag-schema');
    expect(sha256File(out)).toBe(sha256File(b10));
    const ls = await kb(['bundle', 'ls', out, '--key', PUB, '--json']);
    expect(ls.code).toBe(0);
    expect(JSON.parse(ls.stdout)).toMatchObject({ rootDigest: res.digest, signatureChecked: true, version: '1.0' });

    // By digest too, and the tag the registry holds is exactly the bundle index.
    const byDigest = join(work, 'by-digest.kbundle');
    expect((await kb(['bundle', 'pull', `${reg.host}/kbundle/hello@${res.digest}`, '-o', byDigest, '--key', PUB, ...PLAIN, '-q'], { env: CREDS })).code).toBe(0);
    expect(sha256File(byDigest)).toBe(sha256File(b10));
  });

  it('dedup: a re-push sends nothing; 1.1 after 1.0 sends only the blobs that changed', async () => {
    const again = await push(b10, `${reg.host}/kbundle/hello:1.0`);
    expect(again.blobs.pushed).toBe(0);
    expect(again.bytes.uploaded).toBe(0);
    expect(again.manifests.pushed).toBe(0);
    expect(again.sentBytes).toBe(0);

    const old = pushableBlobs(b10);
    const now = pushableBlobs(b11);
    const changed = [...now].filter(([d]) => !old.has(d));
    const res = await push(b11, `${reg.host}/kbundle/hello`);
    expect(res.tag).toBe('1.1');
    expect(res.blobs).toEqual({ total: now.size, pushed: changed.length, skipped: now.size - changed.length });
    expect(res.bytes.uploaded).toBe(changed.reduce((n, [, b]) => n + b.size, 0));
    // What both versions share (at least the empty config) stays home.
    expect(res.blobs.skipped).toBeGreaterThan(0);
    expect(res.bytes.skipped).toBe([...now].filter(([d]) => old.has(d)).reduce((n, [, b]) => n + b.size, 0));
    console.log(`[registry] 1.0 push: ${old.size} blobs ${[...old.values()].reduce((n, b) => n + b.size, 0)} B; 1.1 after 1.0: ${res.blobs.pushed}/${res.blobs.total} blobs, ${res.bytes.uploaded}/${res.bytes.total} B (+${res.manifests.bytes} B manifests); re-push: ${again.sentBytes} B`);

    const out = join(work, 'pulled-1.1.kbundle');
    expect((await kb(['bundle', 'pull', `${reg.host}/kbundle/hello:1.1`, '-o', out, '--key', PUB, ...PLAIN, '-q'], { env: CREDS })).code).toBe(0);
    expect(sha256File(out)).toBe(sha256File(b11));
  });

  it('dedup: adding a kernel to a bundle sends only the new kernel\'s module (the others are there)', async () => {
    const one = buildBundle([K612], { name: 'one' });
    await push(one, `${reg.host}/kbundle/grow:1.0`);
    const small = pushableBlobs(one);
    const big = pushableBlobs(b10);
    const fresh = [...big].filter(([d]) => !small.has(d));
    const res = await push(b10, `${reg.host}/kbundle/grow:1.0`);
    expect(res.blobs.pushed).toBe(fresh.length);
    expect(res.bytes.uploaded).toBe(fresh.reduce((n, [, b]) => n + b.size, 0));
    // The K612 module is the same bytes in both bundles and is not sent again.
    const shared = [...big].filter(([d, b]) => b.mediaType === 'application/vnd.kbundle.module.v1' && small.has(d));
    expect(shared.length).toBe(1);
    console.log(`[registry] ${K612} only, then ${K55}+${K612}: ${res.blobs.pushed}/${res.blobs.total} blobs, ${res.bytes.uploaded}/${res.bytes.total} B`);
  });

  it('chunked upload (PATCH with Content-Range) gives the same bundle back', async () => {
    const res = await push(b10, `${reg.host}/kbundle/chunked:v1`, ['--chunk-size', '4K']);
    expect(res.upload).toBe('chunked');
    const big = [...pushableBlobs(b10).values()].reduce((n, b) => n + Math.max(1, Math.ceil(b.size / 4096)), 0);
    expect(res.chunks).toBe(big);
    expect(res.chunks).toBeGreaterThan(res.blobs.pushed); // some blob took more than one PATCH
    const out = join(work, 'pulled-chunked.kbundle');
    expect((await kb(['bundle', 'pull', `${reg.host}/kbundle/chunked:v1`, '-o', out, '--key', PUB, ...PLAIN, '-q'], { env: CREDS })).code).toBe(0);
    expect(sha256File(out)).toBe(sha256File(b10));
  });

  it('wrong password: exit 90, a message naming the user, nothing written', async () => {
    const out = join(work, 'never.kbundle');
    const r = await kb(['bundle', 'pull', `${reg.host}/kbundle/hello:1.0`, '-o', out, ...PLAIN], { env: { ...CREDS, KBUNDLE_REGISTRY_PASSWORD: 'wrong' } });
    expect(r.code).toBe(ExitCode.RegistryAuthFailed);
    expect(r.stderr).toMatch(/authentication failed at 127\.0\.0\.1:\d+ for user "builder".*wrong username or password/);
    expect(existsSync(out)).toBe(false);
    const push1 = await kb(['bundle', 'push', b10, `${reg.host}/kbundle/other`, ...PLAIN, '-u', 'builder', '--password-stdin'], { input: 'nope\n' });
    expect(push1.code).toBe(ExitCode.RegistryAuthFailed);
    const anon = await kb(['bundle', 'pull', `${reg.host}/kbundle/hello:1.0`, '-o', out, ...PLAIN]);
    expect(anon.code).toBe(ExitCode.RegistryAuthFailed);
    expect(anon.stderr).toContain('requires credentials');
    expect(existsSync(out)).toBe(false);
    // -u with the right password on stdin works
    const ok = await kb(['bundle', 'pull', `${reg.host}/kbundle/hello:1.0`, '-o', out, ...PLAIN, '-u', 'builder', '--password-stdin', '-q'], { input: `${CREDS.KBUNDLE_REGISTRY_PASSWORD}\n` });
    expect(ok.code).toBe(0);
    expect(sha256File(out)).toBe(sha256File(b10));
  });

  it('a killed pull\'s scratch directory (owner pid gone) is swept by the next pull', async () => {
    const dir = mkdtempSync(join(work, 'sweep-'));
    const stale = join(dir, '.hello.kbundle.kbundle-tmp-999999999-abcd1234');
    mkdirSync(stale);
    writeFileSync(join(stale, 'partial'), 'x');
    const out = join(dir, 'hello.kbundle');
    await push(b10, `${reg.host}/kbundle/sweep:1.0`);
    expect((await kb(['bundle', 'pull', `${reg.host}/kbundle/sweep:1.0`, '-o', out, ...PLAIN, '-q', '--key', PUB], { env: CREDS })).code).toBe(0);
    expect(readdirSync(dir)).toEqual(['hello.kbundle']);
  });

  it('unknown tag 91, bad REF 95, no registry listening 94', async () => {
    const out = join(work, 'none.kbundle');
    const nf = await kb(['bundle', 'pull', `${reg.host}/kbundle/hello:9.9`, '-o', out, ...PLAIN], { env: CREDS });
    expect(nf.code).toBe(ExitCode.RegistryNotFound);
    expect(nf.stderr).toContain('not found');
    const bad = await kb(['bundle', 'pull', 'kbundle/hello:1.0', '-o', out]);
    expect(bad.code).toBe(ExitCode.RegistryBadReference);
    expect(bad.stderr).toContain('name the registry host first');
    const down = await kb(['bundle', 'pull', '127.0.0.1:1/kbundle/hello:1.0', '-o', out, ...PLAIN]);
    expect(down.code).toBe(ExitCode.RegistryNetwork);
    expect(down.stderr).toContain('connection refused');
    expect(existsSync(out)).toBe(false);
  });

  it('a blob the registry corrupted on disk: pull fails with 93 and writes nothing', async () => {
    await push(b10, `${reg.host}/kbundle/corrupt:1.0`);
    // The largest module blob, in the registry's own filesystem storage.
    const [digest] = [...pushableBlobs(b10)].filter(([, b]) => b.mediaType === 'application/vnd.kbundle.module.v1').sort((a, b) => b[1].size - a[1].size)[0]!;
    const hex = digest.slice(7);
    const data = join(reg.root, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    const bytes = readFileSync(data);
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(data, bytes);
    const out = join(work, 'corrupt.kbundle');
    const r = await kb(['bundle', 'pull', `${reg.host}/kbundle/corrupt:1.0`, '-o', out, ...PLAIN, '--key', PUB], { env: CREDS });
    expect(r.code).toBe(ExitCode.RegistryDigestMismatch);
    expect(r.stderr).toContain(`blob ${digest}: the registry sent`);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(work).filter((n) => n.includes('.kbundle-tmp-'))).toEqual([]);
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(data, bytes);
  });
});

describe('bearer-token auth (token server issuing ES256 JWTs)', () => {
  let tokens: TokenServer;
  let treg: Registry;
  beforeAll(async () => {
    tokens = await startTokenServer({ builder: { password: 'tok-pass', grants: ['pull', 'push'] }, reader: { password: 'read-only', grants: ['pull'] } });
    treg = await startRegistry({ kind: 'token', realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, certFile: tokens.certFile });
  });
  afterAll(async () => {
    await treg?.stop();
    await tokens?.stop();
  });

  it('push with -u/--password-stdin, pull with env credentials: byte-identical, verifies', async () => {
    const r = await kb(['bundle', 'push', b10, `${treg.host}/team/hello:1.0`, ...PLAIN, '-u', 'builder', '--password-stdin', '--json'], { input: 'tok-pass\n' });
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as PushJson).blobs.pushed).toBeGreaterThan(0);
    expect(tokens.requests.some((q) => q.user === 'builder' && q.scopes.includes('repository:team/hello:pull,push'))).toBe(true);
    const out = join(work, 'token.kbundle');
    const p = await kb(['bundle', 'pull', `${treg.host}/team/hello:1.0`, '-o', out, ...PLAIN, '--key', PUB, '-q'], { env: { KBUNDLE_REGISTRY_USERNAME: 'reader', KBUNDLE_REGISTRY_PASSWORD: 'read-only' } });
    expect(p.code).toBe(0);
    expect(sha256File(out)).toBe(sha256File(b10));
  });

  it('wrong password at the token server: 90; read-only user pushing: 96', async () => {
    const bad = await kb(['bundle', 'pull', `${treg.host}/team/hello:1.0`, '-o', join(work, 'x.kbundle'), ...PLAIN], { env: { KBUNDLE_REGISTRY_USERNAME: 'builder', KBUNDLE_REGISTRY_PASSWORD: 'nope' } });
    expect(bad.code).toBe(ExitCode.RegistryAuthFailed);
    expect(bad.stderr).toMatch(/authentication failed at http:\/\/127\.0\.0\.1:\d+\/token .*user "builder"/);
    const ro = await kb(['bundle', 'push', b11, `${treg.host}/team/hello`, ...PLAIN], { env: { KBUNDLE_REGISTRY_USERNAME: 'reader', KBUNDLE_REGISTRY_PASSWORD: 'read-only' } });
    expect(ro.code).toBe(ExitCode.RegistryDenied);
    expect(ro.stderr).toContain('user "reader" may not pull/push team/hello');
  });
});

describe('HTTPS (the default; a registry with a self-signed certificate)', () => {
  let treg: Registry;
  let tls: { cert: string; key: string };
  beforeAll(async () => {
    tls = selfSignedCert();
    treg = await startRegistry({ kind: 'htpasswd', users: { builder: CREDS.KBUNDLE_REGISTRY_PASSWORD } }, tls);
  });
  afterAll(async () => {
    await treg?.stop();
  });

  it('an untrusted certificate is a network error (94) that says what to do; trusted through NODE_EXTRA_CA_CERTS it round-trips', async () => {
    const bad = await kb(['bundle', 'push', b10, `${treg.host}/tls/hello`, '-q'], { env: CREDS });
    expect(bad.code).toBe(ExitCode.RegistryNetwork);
    expect(bad.stderr).toContain('NODE_EXTRA_CA_CERTS');
    const env = { ...CREDS, NODE_EXTRA_CA_CERTS: tls.cert };
    const ok = await kb(['bundle', 'push', b10, `${treg.host}/tls/hello`, '-q'], { env });
    expect(ok.code).toBe(0);
    const out = join(work, 'tls.kbundle');
    expect((await kb(['bundle', 'pull', `${treg.host}/tls/hello:1.0`, '-o', out, '--key', PUB, '-q'], { env })).code).toBe(0);
    expect(sha256File(out)).toBe(sha256File(b10));
  });
});
