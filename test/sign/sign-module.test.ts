// signModule() against Debian's real sign-file, openssl cms and modinfo.
import { copyFileSync, readFileSync, statSync, chmodSync, writeFileSync, existsSync } from 'node:fs';
import { createPrivateKey } from 'node:crypto';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import * as pkijs from 'pkijs';
import * as asn1js from 'asn1js';
import { buildHelloModule } from '../helpers/hello-module.js';
import { twoKernels } from '../helpers/kernels.js';
import { signModule, signModuleInPlace } from '../../src/sign/sign-module.js';
import { certificateInfo, generateMok } from '../../src/sign/keys.js';
import { splitSignedModule } from '../../src/sign/appended-signature.js';
import { verifyModuleSignature } from '../../src/sign/verify-module.js';
import { KbundleError } from '../../src/util/errors.js';
import type { ModuleHash } from '../../src/sign/algorithms.js';
import { modinfoF, run, signFileFor, tempDir } from './tools.js';

const kernels = twoKernels();

for (const k of kernels) {
  if (!signFileFor(k)) console.warn(`\n!!! sign-file for ${k} not installed (linux-kbuild package): byte-equality tests for it are SKIPPED !!!\n`);
}

interface Fixture {
  dir: string;
  ko: string;
  key: string;
  certDer: string;
  certPem: string;
}

async function fixture(k: string): Promise<Fixture> {
  const dir = tempDir();
  const ko = join(dir, 'm.ko');
  copyFileSync(await buildHelloModule(k), ko);
  const key = join(dir, 'mok.key');
  const certDer = join(dir, 'mok.pub');
  await generateMok(key, certDer);
  const certPem = join(dir, 'mok.pem');
  const r = await run('openssl', ['x509', '-inform', 'DER', '-in', certDer, '-outform', 'PEM', '-out', certPem]);
  expect(r.code).toBe(0);
  return { dir, ko, key, certDer, certPem };
}

async function signFileOutput(signFile: string, f: Fixture, hash: string, cert: string): Promise<Buffer> {
  const out = join(f.dir, `ref-${hash}-${cert.endsWith('.pem') ? 'pem' : 'der'}.ko`);
  const r = await run(signFile, [hash, f.key, cert, f.ko, out]);
  expect(r.code, r.stderr).toBe(0);
  return readFileSync(out);
}

describe.each(kernels)('byte equality with sign-file (%s)', (k) => {
  const signFile = signFileFor(k);
  let f: Fixture;
  beforeAll(async () => {
    f = await fixture(k);
  });
  // Every hash the kernel offers; both certificate encodings sign-file accepts.
  const hashes: ModuleHash[] = ['sha256', 'sha512', 'sha384', 'sha224', 'sha1'];
  test.skipIf(!signFile).each(hashes.flatMap((h) => [[h, 'der'] as const, [h, 'pem'] as const]))('%s, %s certificate', async (hash, enc) => {
    const cert = enc === 'der' ? f.certDer : f.certPem;
    const ours = await signModule(readFileSync(f.ko), { key: f.key, cert: readFileSync(cert), hash });
    const theirs = await signFileOutput(signFile!, f, hash, cert);
    expect(ours.length).toBe(theirs.length);
    expect(ours.equals(theirs)).toBe(true);
  });

  test.skipIf(!signFile)('the CMS equals sign-file -d detached output', async () => {
    const r = await run(signFile!, ['-d', 'sha256', f.key, f.certDer, f.ko]);
    expect(r.code, r.stderr).toBe(0);
    const p7s = readFileSync(`${f.ko}.p7s`);
    const ours = splitSignedModule(await signModule(readFileSync(f.ko), { key: f.key, cert: readFileSync(f.certDer), hash: 'sha256' }))!;
    expect(ours.cms.equals(p7s)).toBe(true);
    expect(ours.body.equals(readFileSync(f.ko))).toBe(true);
  });
});

describe('signed module seen by real tools', () => {
  let f: Fixture;
  let signed: string;
  beforeAll(async () => {
    f = await fixture(kernels[0]);
    signed = join(f.dir, 'signed.ko');
    writeFileSync(signed, await signModule(readFileSync(f.ko), { key: f.key, cert: readFileSync(f.certDer), hash: 'sha512' }));
  });

  test('modinfo reports signer, key and hash from the certificate', async () => {
    const info = certificateInfo(readFileSync(f.certDer));
    expect(info.issuerCN).toBe('DKMS module signing key');
    expect(await modinfoF(signed, 'sig_id')).toEqual(['PKCS#7']);
    expect(await modinfoF(signed, 'signer')).toEqual([info.issuerCN]);
    expect(await modinfoF(signed, 'sig_key')).toEqual([info.serialHex]);
    expect(await modinfoF(signed, 'sig_hashalgo')).toEqual(['sha512']);
  });

  test('openssl cms -verify accepts the signature and rejects a tampered body', async () => {
    const parts = splitSignedModule(readFileSync(signed))!;
    const p7s = join(f.dir, 'm.p7s');
    const body = join(f.dir, 'm.body');
    writeFileSync(p7s, parts.cms);
    writeFileSync(body, parts.body);
    const verify = () =>
      run('openssl', ['cms', '-verify', '-binary', '-inform', 'DER', '-in', p7s, '-content', body, '-certfile', f.certPem, '-nointern', '-noverify', '-out', '/dev/null']);
    const ok = await verify();
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toContain('Verification successful');
    const tampered = Buffer.from(parts.body);
    tampered[tampered.length >> 1]! ^= 0x01;
    writeFileSync(body, tampered);
    const bad = await verify();
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('Verification failure');
  });

  test('the CMS has the kernel-required shape (rsaEncryption, no certs, no attributes, detached)', async () => {
    const cms = splitSignedModule(readFileSync(signed))!.cms;
    const r = await run('openssl', ['cms', '-cmsout', '-print', '-inform', 'DER'], { input: cms });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/eContent: <ABSENT>/);
    expect(r.stdout).toMatch(/certificates:\s*<ABSENT>/);
    expect(r.stdout).toMatch(/signedAttrs:\s*<ABSENT>/);
    expect(r.stdout).toMatch(/signatureAlgorithm:\s*\n\s*algorithm: rsaEncryption/);
  });
});

describe('inputs and refusals', () => {
  let f: Fixture;
  let reference: Buffer;
  beforeAll(async () => {
    f = await fixture(kernels[0]);
    reference = await signModule(readFileSync(f.ko), { key: f.key, cert: readFileSync(f.certDer), hash: 'sha256' });
  });
  const sign = (key: Parameters<typeof signModule>[1]['key']) => signModule(readFileSync(f.ko), { key, cert: readFileSync(f.certDer), hash: 'sha256' });

  test('key as KeyObject, PEM text, PKCS#8 DER file and PKCS#1 DER file give the same bytes', async () => {
    const keyObj = createPrivateKey(readFileSync(f.key));
    const pk8 = join(f.dir, 'k8.der');
    const pk1 = join(f.dir, 'k1.der');
    writeFileSync(pk8, keyObj.export({ format: 'der', type: 'pkcs8' }));
    writeFileSync(pk1, keyObj.export({ format: 'der', type: 'pkcs1' }));
    for (const key of [keyObj, readFileSync(f.key, 'utf8'), pk8, pk1]) expect((await sign(key)).equals(reference)).toBe(true);
  });

  test('refuses an already-signed module', async () => {
    await expect(signModule(reference, { key: f.key, cert: readFileSync(f.certDer), hash: 'sha256' })).rejects.toThrow(/already signed/);
  });

  test('refuses a key that does not match the certificate', async () => {
    const other = join(f.dir, 'other');
    await generateMok(`${other}.key`, `${other}.pub`);
    await expect(sign(`${other}.key`)).rejects.toThrow(/does not match/);
  });

  test('refuses compressed input, PKCS#11 URIs, unknown hashes', async () => {
    const xz = (await run('xz', ['-c', f.ko])).stdout;
    await expect(signModule(Buffer.from(xz, 'latin1'), { key: f.key, cert: readFileSync(f.certDer), hash: 'sha256' })).rejects.toBeInstanceOf(KbundleError);
    await expect(sign('pkcs11:token=x')).rejects.toThrow(/PKCS#11/);
    await expect(signModule(readFileSync(f.ko), { key: f.key, cert: readFileSync(f.certDer), hash: 'md5' as ModuleHash })).rejects.toThrow(/unsupported/);
  });

  test('signModuleInPlace signs in place and keeps the mode', async () => {
    const p = join(f.dir, 'inplace.ko');
    copyFileSync(f.ko, p);
    chmodSync(p, 0o640);
    await signModuleInPlace(p, { key: f.key, cert: readFileSync(f.certDer), hash: 'sha256' });
    expect(readFileSync(p).equals(reference)).toBe(true);
    expect(statSync(p).mode & 0o777).toBe(0o640);
    expect(existsSync(`${p}.kbundle-sign.tmp`)).toBe(false);
  });

  test('signing time per module', async () => {
    const ko = readFileSync(f.ko);
    const n = 20;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await signModule(ko, { key: f.key, cert: readFileSync(f.certDer), hash: 'sha256' });
    const ms = (performance.now() - t0) / n;
    console.log(`signModule: ${ms.toFixed(2)} ms per ${ko.length}-byte module (RSA-2048, sha256, mean of ${n})`);
    expect(ms).toBeLessThan(500);
  });
});

describe('ECDSA P-384', () => {
  // ECDSA signatures are randomised, so sign-file equality is checked with the signature value blanked.
  function blankSignature(cms: Buffer): Buffer {
    const ci = pkijs.ContentInfo.fromBER(new Uint8Array(cms));
    const sd = new pkijs.SignedData({ schema: ci.content });
    sd.signerInfos[0]!.signature = new asn1js.OctetString({ valueHex: new Uint8Array(8) });
    return Buffer.from(new pkijs.ContentInfo({ contentType: ci.contentType, content: sd.toSchema() }).toSchema().toBER());
  }

  test('signature verifies with openssl and matches sign-file structure', async () => {
    const dir = tempDir();
    const ko = join(dir, 'm.ko');
    copyFileSync(await buildHelloModule(kernels[0]), ko);
    const key = join(dir, 'ec.key');
    const cert = join(dir, 'ec.pem');
    const g = await run('openssl', ['req', '-new', '-x509', '-nodes', '-days', '1', '-subj', '/CN=ec test', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:secp384r1', '-keyout', key, '-out', cert]);
    expect(g.code, g.stderr).toBe(0);
    const signed = await signModule(readFileSync(ko), { key, cert: readFileSync(cert), hash: 'sha384' });
    const parts = splitSignedModule(signed)!;
    writeFileSync(join(dir, 'p7s'), parts.cms);
    const v = await run('openssl', ['cms', '-verify', '-binary', '-inform', 'DER', '-in', join(dir, 'p7s'), '-content', ko, '-certfile', cert, '-nointern', '-noverify', '-out', '/dev/null']);
    expect(v.code, v.stderr).toBe(0);
    writeFileSync(join(dir, 'signed.ko'), signed);
    expect(await modinfoF(join(dir, 'signed.ko'), 'sig_hashalgo')).toEqual(['sha384']);
    expect(await verifyModuleSignature(signed, readFileSync(cert))).toMatchObject({ valid: true, signer: 'ec test', hashAlgo: 'sha384' });
    const tampered = Buffer.from(signed);
    tampered[64]! ^= 1;
    expect((await verifyModuleSignature(tampered, readFileSync(cert))).valid).toBe(false);
    const signFile = signFileFor(kernels[0]);
    if (signFile) {
      const r = await run(signFile, ['sha384', key, cert, ko, join(dir, 'ref.ko')]);
      expect(r.code, r.stderr).toBe(0);
      const ref = splitSignedModule(readFileSync(join(dir, 'ref.ko')))!;
      expect(blankSignature(parts.cms).equals(blankSignature(ref.cms))).toBe(true);
    }
  });
});
