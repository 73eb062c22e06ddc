import { spawnSync } from 'node:child_process';
import ssri from 'ssri';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, readFileSync, readlinkSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { canonicalJsonBytes } from '../../src/bundle/model/canonical-json.js';
import { mergeBundles } from '../../src/bundle/write/merge.js';
import { openBundle, type OpenBundle } from '../../src/bundle/read/open.js';
import { generateKeys, parsePublicKey, parseSecretKey, signMinisign } from '../../src/sign/minisign.js';
import { writeBundle } from '../../src/bundle/write/writer.js';
import { KbundleError } from '../../src/util/errors.js';
import { rewriteTar } from '../helpers/bundles.js';
import { makeSourceTree, realModules, spec, target, testKeys, tmp } from './fixtures.js';

const hasSkopeo = spawnSync('skopeo', ['--version']).status === 0;
const K1 = '6.1.0-56-amd64';
const K2 = '6.1.0-55-amd64';
const K3 = '6.12.117+deb12-amd64';

const sha = (f: string) => 'sha256:' + createHash('sha256').update(readFileSync(f)).digest('hex');

async function failure(p: Promise<unknown>): Promise<KbundleError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  if (!(e instanceof KbundleError)) throw new Error(`expected a KbundleError, got ${String(e)}`);
  return e;
}

/** Flips one byte inside a tar member's data, leaving headers intact. */
function flipByteIn(file: string, member: string, at = 0): string {
  const out = file.replace(/\.tar$/, '') + `-flip-${member.split('/').pop()!.slice(0, 8)}.tar`;
  copyFileSync(file, out);
  const r = spawnSync('python3', ['-c', `import tarfile,sys; print(tarfile.open(sys.argv[1]).getmember(sys.argv[2]).offset_data)`, out, member], { encoding: 'utf8' });
  const off = Number(r.stdout.trim()) + at;
  const buf = readFileSync(out);
  buf[off] ^= 0x01;
  writeFileSync(out, buf);
  return out;
}


const blobName = (d: string) => `blobs/sha256/${d.slice(7)}`;

describe('bundle write / open / verify', () => {
  let dir: string;
  let whole: string;
  let rootDigest: string;
  let b: OpenBundle;
  let mods: string[];
  const { sk, pk } = testKeys();

  beforeAll(async () => {
    dir = tmp();
    mods = realModules().slice(0, 3);
    const src = makeSourceTree(dir);
    whole = join(dir, 'whole.tar');
    const r = await writeBundle(spec(src, [target(K1, 'x86_64', mods.slice(0, 2)), target(K2, 'x86_64', mods.slice(0, 2)), target(K3, 'x86_64', mods)]), whole);
    rootDigest = r.digest;
    expect(r.size).toBe(readFileSync(whole).length);
    b = await openBundle(whole, { trustedKeys: [pk] });
  });

  test('ls view: identity, signer, packages, kernels, arches, modules', () => {
    const ix = b.index;
    expect(ix.rootDigest).toBe(rootDigest);
    expect([ix.name, ix.version, ix.created]).toEqual(['hello', '1.0', '2023-11-14T22:13:20Z']);
    expect(ix.metadata).toEqual({ vendor: 'Example Corp', description: 'hello world module', license: 'GPL-2.0' });
    expect(ix.signer.keyId).toBe(pk.keyId);
    expect(ix.signer.trustedComment).toBe(`kbundle-index=${rootDigest} name=hello version=1.0 created=1700000000`);
    expect(ix.kernels).toEqual([K2, K1, K3].sort());
    expect(ix.arches).toEqual(['x86_64']);
    expect(ix.packages).toHaveLength(1);
    const p = ix.packages[0];
    expect(p.config.compression.level).toBe(3);
    expect(p.targets.map((t) => `${t.kernelRelease}:${t.modules.length}`).sort()).toEqual([`${K1}:2`, `${K2}:2`, `${K3}:3`].sort());
    const t3 = b.target('hello', K3, 'x86_64')!;
    expect(t3.modules.map((m) => m.file)).toEqual(mods.map((m) => m.split('/').pop()).sort());
    expect(t3.modules[0].compression).toBe('xz');
    expect(t3.modules[0].digest).toBe(sha(mods.slice().sort()[0]));
    // integrity is the digest in SRI form, and ssri accepts the module bytes against it.
    expect(t3.modules[0].integrity).toMatch(/^sha256-/);
    expect(ssri.checkData(readFileSync(mods.slice().sort()[0]!), t3.modules[0].integrity)).toBeTruthy();
    expect(ssri.checkData(Buffer.from('not the module'), t3.modules[0].integrity)).toBe(false);
  });

  test('a module shared by several kernels is stored once', () => {
    const listing = spawnSync('tar', ['-tf', whole], { encoding: 'utf8' }).stdout.trim().split('\n');
    const modDigest = b.target('hello', K1, 'x86_64')!.modules[0].digest;
    expect(listing.filter((l) => l === blobName(modDigest))).toHaveLength(1);
    // 3 target manifests + 3 configs + 3 distinct modules + source (manifest, config, layer) + index + sig manifest/blob + empty.
    expect(listing.filter((l) => l.startsWith('blobs/sha256/') && l.length > 13)).toHaveLength(3 + 3 + 3 + 3 + 1 + 2 + 1);
    // Directories, then the module blobs by digest, then every other blob by digest, then the two top files.
    const moduleBlobs = [...new Set(b.index.packages[0].targets.flatMap((t) => t.modules.map((m) => blobName(m.digest))))].sort();
    expect(listing.slice(0, 2)).toEqual(['blobs/', 'blobs/sha256/']);
    expect(listing.slice(2, 2 + moduleBlobs.length)).toEqual(moduleBlobs);
    const others = listing.slice(2 + moduleBlobs.length, -2);
    expect(others).toEqual([...others].sort());
    expect(others.some((l) => moduleBlobs.includes(l))).toBe(false);
    expect(listing.slice(-2)).toEqual(['index.json', 'oci-layout']);
  });

  test('readBlob streams verified bytes; extractSource unpacks the tree', async () => {
    const m = b.target('hello', K1, 'x86_64')!.modules[0];
    const parts: Buffer[] = [];
    for await (const c of b.readBlob(m.digest) as AsyncIterable<Buffer>) parts.push(c);
    expect(Buffer.concat(parts).equals(readFileSync(mods.find((f) => f.endsWith(m.file))!))).toBe(true);
    const dest = join(tmp(), 'src');
    const entries = await b.extractSource('hello', dest);
    expect(entries.map((e) => e.path)).toContain('hello-1.0/dkms.conf');
    expect(readFileSync(join(dest, 'hello-1.0/dkms.conf'), 'utf8')).toContain('PACKAGE_NAME="hello"');
    expect(readlinkSync(join(dest, 'hello-1.0/hello.c'))).toBe('src/hello.c');
  });

  test('reproducible: same inputs from other dirs, mtimes, modes and target order → identical file', async () => {
    const d2 = tmp('kbundle-other-');
    const src2 = makeSourceTree(d2, { mtime: 12345, fileMode: 0o664 });
    const copies = mods.map((m) => {
      const c = join(d2, m.split('/').pop()!);
      copyFileSync(m, c);
      utimesSync(c, 99, 99);
      return c;
    });
    const out2 = join(d2, 'again.tar');
    const r2 = await writeBundle(spec(src2, [target(K3, 'x86_64', copies.slice().reverse()), target(K2, 'x86_64', copies.slice(0, 2)), target(K1, 'x86_64', copies.slice(0, 2))]), out2);
    expect(r2.digest).toBe(rootDigest);
    expect(sha(out2)).toBe(sha(whole));
  });

  test('merging two shards gives exactly the bytes of one build, in any order', async () => {
    const src = makeSourceTree(tmp());
    const a = join(dir, 'shard-a.tar');
    const c = join(dir, 'shard-b.tar');
    await writeBundle(spec(src, [target(K1, 'x86_64', mods.slice(0, 2))]), a);
    await writeBundle(spec(src, [target(K3, 'x86_64', mods), target(K2, 'x86_64', mods.slice(0, 2))]), c);
    const m1 = await mergeBundles([a, c], join(dir, 'merged1.tar'), { trustedKeys: [pk], signingKey: sk });
    const m2 = await mergeBundles([c, a, c], join(dir, 'merged2.tar'), { trustedKeys: [pk], signingKey: sk });
    expect(m1.digest).toBe(rootDigest);
    expect(sha(join(dir, 'merged1.tar'))).toBe(sha(whole));
    expect(m2.digest).toBe(rootDigest);
    expect(sha(join(dir, 'merged2.tar'))).toBe(sha(whole));
  });

  test('merge refuses shards that disagree (exit 38)', async () => {
    const src = makeSourceTree(tmp());
    const a = join(dir, 'm-a.tar');
    const c = join(dir, 'm-c.tar');
    const e = join(dir, 'm-e.tar');
    await writeBundle(spec(src, [target(K1, 'x86_64', mods.slice(0, 1))]), a);
    await writeBundle(spec(src, [target(K2, 'x86_64', mods.slice(0, 1))], { metadata: { vendor: 'Other' } }), c);
    await writeBundle(spec(src, [target(K1, 'x86_64', mods.slice(1, 2))]), e);
    const err = await failure(mergeBundles([a, c], join(dir, 'nope.tar'), { trustedKeys: [pk], signingKey: sk }));
    expect(err.exitCode).toBe(38);
    expect(err.message).toBe(`merge: ${c} has different name/version/created/metadata than ${a}`);
    const err2 = await failure(mergeBundles([a, e], join(dir, 'nope.tar'), { trustedKeys: [pk], signingKey: sk }));
    expect(err2.exitCode).toBe(38);
    expect(err2.message).toMatch(new RegExp(`^two different builds of hello/1.0 for ${K1}/x86_64`));
    expect(existsSync(join(dir, 'nope.tar'))).toBe(false);
  });

  test('a flipped byte in every kind of blob is caught as a digest mismatch (exit 31)', async () => {
    const p = b.index.packages[0];
    const t = b.target('hello', K1, 'x86_64')!;
    const bundleIndexJson = JSON.parse(b.jsonBlob(rootDigest).toString()) as { manifests: { digest: string }[] };
    const topIndex = JSON.parse(spawnSync('tar', ['-xOf', whole, 'index.json'], { encoding: 'utf8' }).stdout) as { manifests: { digest: string }[] };
    const sigManifest = JSON.parse(b.jsonBlob(topIndex.manifests[1].digest).toString()) as { layers: { digest: string }[] };
    const kinds: [string, string][] = [
      ['source layer', p.source.digest],
      ['package config', (JSON.parse(b.jsonBlob(p.manifestDigest).toString()) as { config: { digest: string } }).config.digest],
      ['module', t.modules[0].digest],
      ['target config', (JSON.parse(b.jsonBlob(t.manifestDigest).toString()) as { config: { digest: string } }).config.digest],
      ['target manifest', t.manifestDigest],
      ['bundle index', rootDigest],
      ['signature manifest', topIndex.manifests[1].digest],
      ['signature', sigManifest.layers[0].digest],
    ];
    expect(bundleIndexJson.manifests.length).toBe(4);
    for (const [kind, digest] of kinds) {
      const bad = flipByteIn(whole, blobName(digest), 5);
      const err = await failure(openBundle(bad, { trustedKeys: [pk] }));
      expect(`${kind}: ${err.exitCode}`).toBe(`${kind}: 31`);
      expect(err.message).toMatch(new RegExp(`^${bad}: blob ${digest} is corrupt: its content hashes to sha256:[0-9a-f]{64}$`));
    }
  });

  test('a re-hashed forged signature is refused (exit 30); unknown key (exit 33)', async () => {
    const forged = join(dir, 'forged.tar');
    await rewriteTar(whole, forged, (e) => {
      const top = JSON.parse(e.get('index.json')!.toString());
      const sigMan = JSON.parse(e.get(blobName(top.manifests[1].digest))!.toString());
      const sigText = e.get(blobName(sigMan.layers[0].digest))!.toString();
      // Signed by the right key but over different bytes: structurally perfect, cryptographically wrong.
      const other = signMinisign(Buffer.from('something else'), sk, sigText.split('\n')[2].slice('trusted comment: '.length));
      const newSig = Buffer.from(other);
      const sd = 'sha256:' + createHash('sha256').update(newSig).digest('hex');
      e.delete(blobName(sigMan.layers[0].digest));
      e.set(blobName(sd), newSig);
      sigMan.layers[0] = { ...sigMan.layers[0], digest: sd, size: newSig.length };
      const manBytes = canonicalJsonBytes(sigMan);
      const md = 'sha256:' + createHash('sha256').update(manBytes).digest('hex');
      e.delete(blobName(top.manifests[1].digest));
      e.set(blobName(md), manBytes);
      top.manifests[1] = { ...top.manifests[1], digest: md, size: manBytes.length };
      e.set('index.json', canonicalJsonBytes(top));
    });
    const err = await failure(openBundle(forged, { trustedKeys: [pk] }));
    expect(err.exitCode).toBe(30);
    expect(err.message).toBe(`bundle signature does not match the signed content (key ${pk.keyId})`);

    const stranger = parsePublicKey(generateKeys().publicKeyText);
    const err2 = await failure(openBundle(whole, { trustedKeys: [stranger] }));
    expect(err2.exitCode).toBe(33);
    expect(err2.message).toBe(`bundle is signed by key ${pk.keyId}, which is not trusted (trusted keys: ${stranger.keyId})`);
  });

  test('unsigned bundle (signature entry removed) → exit 30', async () => {
    const out = join(dir, 'unsigned.tar');
    await rewriteTar(whole, out, (e) => {
      const top = JSON.parse(e.get('index.json')!.toString());
      const sigMan = JSON.parse(e.get(blobName(top.manifests[1].digest))!.toString());
      for (const d of [top.manifests[1].digest, sigMan.layers[0].digest, sigMan.config.digest]) e.delete(blobName(d));
      top.manifests.pop();
      e.set('index.json', canonicalJsonBytes(top));
    });
    const err = await failure(openBundle(out, { trustedKeys: [pk] }));
    expect([err.exitCode, err.message]).toEqual([30, `${out}: bundle is not signed (no signature manifest in index.json)`]);
  });

  test('truncated file → exit 32', async () => {
    const cut = join(dir, 'cut.tar');
    copyFileSync(whole, cut);
    truncateSync(cut, Math.floor(readFileSync(whole).length / 2) + 7);
    const err = await failure(openBundle(cut, { trustedKeys: [pk] }));
    expect(err.exitCode).toBe(32);
    expect(err.message).toBe(`${cut}: truncated archive (unexpected end of data)`);
  });

  test('extra entries, unreferenced blobs, duplicates, unknown media types are refused', async () => {
    const extra = join(dir, 'extra.tar');
    await rewriteTar(whole, extra, (e) => e.set('evil.sh', Buffer.from('#!/bin/sh')));
    let err = await failure(openBundle(extra, { trustedKeys: [pk] }));
    expect([err.exitCode, err.message]).toEqual([32, `${extra}: entry evil.sh is not part of an OCI image layout`]);

    const stray = join(dir, 'stray.tar');
    const data = Buffer.from('stray');
    const sd = 'sha256:' + createHash('sha256').update(data).digest('hex');
    await rewriteTar(whole, stray, (e) => e.set(blobName(sd), data));
    err = await failure(openBundle(stray, { trustedKeys: [pk] }));
    expect([err.exitCode, err.message]).toEqual([32, `${stray}: blob ${sd} is not referenced by the signed index`]);

    const dup = join(dir, 'dup.tar');
    spawnSync('cp', [whole, dup]);
    spawnSync('python3', ['-c', `
import tarfile,sys
t=tarfile.open(sys.argv[1],'a'); import io
i=tarfile.TarInfo('oci-layout'); d=b'{"imageLayoutVersion":"1.0.0"}'; i.size=len(d); t.addfile(i,io.BytesIO(d)); t.close()`, dup]);
    err = await failure(openBundle(dup, { trustedKeys: [pk] }));
    expect([err.exitCode, err.message]).toEqual([32, `${dup}: duplicate entry oci-layout`]);

    const weird = join(dir, 'weird.tar');
    await rewriteTar(whole, weird, (e) => {
      const top = JSON.parse(e.get('index.json')!.toString());
      top.manifests[0].mediaType = 'application/x-unknown';
      e.set('index.json', canonicalJsonBytes(top));
    });
    err = await failure(openBundle(weird, { trustedKeys: [pk] }));
    expect([err.exitCode, err.message]).toEqual([35, `${weird}: index.json lists unknown media type "application/x-unknown"`]);
  });

  test('a wrong descriptor size is caught before hashing trust (exit 31)', async () => {
    const out = join(dir, 'size.tar');
    await rewriteTar(whole, out, (e) => {
      const top = JSON.parse(e.get('index.json')!.toString());
      top.manifests[0].size += 1;
      e.set('index.json', canonicalJsonBytes(top));
    });
    const err = await failure(openBundle(out, { trustedKeys: [pk] }));
    expect(err.exitCode).toBe(31);
    expect(err.message).toMatch(/bundle index sha256:[0-9a-f]{64} is \d+ bytes, descriptor declares \d+$/);
  });

  test('no partial file under the output name when writing fails', async () => {
    const d = tmp();
    const src = makeSourceTree(d);
    writeFileSync(join(d, 'out.tar'), 'previous');
    const missing = join(d, 'gone.ko');
    const err = await failure(writeBundle(spec(src, [target(K1, 'x86_64', [missing])]), join(d, 'out.tar')).catch((e: NodeJS.ErrnoException) => {
      throw e instanceof KbundleError ? e : new KbundleError(e.code ?? e.message, 1);
    }));
    expect(err.message).toBe('ENOENT');
    expect(readFileSync(join(d, 'out.tar'), 'utf8')).toBe('previous');
    expect(readdirSync(d).sort()).toEqual(['hello-1.0', 'out.tar']);
  });

  test('spec errors are exit 40 with the offending value named', async () => {
    const src = makeSourceTree(tmp());
    const err = await failure(writeBundle(spec(src, [target(K1, 'sparc', mods.slice(0, 1))]), join(tmp(), 'x.tar')));
    expect([err.exitCode, err.message]).toEqual([40, `bundle spec: hello/${K1}: unknown arch "sparc"`]);
    const notko = join(tmp(), 'x.ko');
    writeFileSync(notko, 'text');
    const err2 = await failure(writeBundle(spec(src, [target(K1, 'x86_64', [notko])]), join(tmp(), 'x.tar')));
    expect([err2.exitCode, err2.message]).toEqual([40, `${notko}: not an ELF module nor xz/zstd/gzip-compressed one`]);
  });

  test.runIf(hasSkopeo)('skopeo reads the archive: inspect --raw returns the signed index byte-for-byte, copy --all keeps every manifest and blob', () => {
    const raw = spawnSync('skopeo', ['inspect', '--raw', `oci-archive:${whole}:hello:1.0`]);
    expect(raw.status).toBe(0);
    expect('sha256:' + createHash('sha256').update(raw.stdout).digest('hex')).toBe(rootDigest);
    const dest = join(tmp(), 'copy');
    const cp = spawnSync('skopeo', ['copy', '--all', `oci-archive:${whole}:hello:1.0`, `oci:${dest}:hello`], { encoding: 'utf8' });
    expect(cp.status, cp.stderr).toBe(0);
    // skopeo 1.9 re-serialises the image index when copying (so the copy's
    // root digest differs and the signature no longer applies), but it keeps
    // every manifest and blob below it byte-for-byte.
    for (const p of b.index.packages) {
      for (const digest of [p.manifestDigest, p.source.digest, ...p.targets.flatMap((t) => [t.manifestDigest, ...t.modules.map((m) => m.digest)])]) {
        expect(existsSync(join(dest, 'blobs/sha256', digest.slice(7))), digest).toBe(true);
      }
    }
  });
});

describe('key file interop', () => {
  test('PEM written by generateKeys signs a bundle verified with the .pub text', () => {
    const g = generateKeys();
    expect(g.secretKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(parseSecretKey(g.secretKeyPem).publicKey.keyId).toBe(parsePublicKey(g.publicKeyText).keyId);
  });
});
