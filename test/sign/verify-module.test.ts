// verifyModuleSignature() on our signatures and on Debian's own signed modules.
import { copyFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { buildHelloModule } from '../helpers/hello-module.js';
import { installedKernels, twoKernels } from '../helpers/kernels.js';
import { signModule } from '../../src/sign/sign-module.js';
import { certificateInfo, generateMok } from '../../src/sign/keys.js';
import { verifyModuleSignature } from '../../src/sign/verify-module.js';
import { appendSignature, splitSignedModule } from '../../src/sign/appended-signature.js';
import { readModule } from '../../src/kmod/compression.js';
import { modinfoF, run, tempDir } from './tools.js';

describe('verifyModuleSignature', () => {
  let dir: string;
  let cert: Buffer;
  let ko: Buffer;
  let signed: Buffer;
  beforeAll(async () => {
    dir = tempDir();
    copyFileSync(await buildHelloModule(twoKernels()[0]), join(dir, 'm.ko'));
    ko = readFileSync(join(dir, 'm.ko'));
    await generateMok(join(dir, 'mok.key'), join(dir, 'mok.pub'));
    cert = readFileSync(join(dir, 'mok.pub'));
    signed = await signModule(ko, { key: join(dir, 'mok.key'), cert, hash: 'sha256' });
  });

  test('accepts our signature and names the signer as modinfo does', async () => {
    const info = certificateInfo(cert);
    expect(await verifyModuleSignature(signed, cert)).toEqual({ valid: true, signer: info.issuerCN, keyId: info.serialHex, hashAlgo: 'sha256' });
  });

  test('accepts the certificate in PEM form too', async () => {
    const pem = (await run('openssl', ['x509', '-inform', 'DER', '-outform', 'PEM'], { input: cert })).stdout;
    expect((await verifyModuleSignature(signed, Buffer.from(pem))).valid).toBe(true);
  });

  test('rejects a tampered body, a tampered signature and a foreign certificate; openssl agrees', async () => {
    const parts = splitSignedModule(signed)!;
    const body = Buffer.from(parts.body);
    body[100]! ^= 0x80;
    const tampered = appendSignature(body, parts.cms);
    const r1 = await verifyModuleSignature(tampered, cert);
    expect(r1.valid).toBe(false);
    expect(r1.reason).toMatch(/does not match the module contents/);

    const cms = Buffer.from(parts.cms);
    cms[cms.length - 5]! ^= 0x01; // inside the RSA signature value, the last field
    expect((await verifyModuleSignature(appendSignature(parts.body, cms), cert)).valid).toBe(false);

    await generateMok(join(dir, 'o.key'), join(dir, 'o.pub'));
    const r3 = await verifyModuleSignature(signed, readFileSync(join(dir, 'o.pub')));
    expect(r3.valid).toBe(false);
    expect(r3.reason).toMatch(/different key/);

    // Cross-check the tampered-body verdict with openssl.
    writeFileSync(join(dir, 't.body'), body);
    writeFileSync(join(dir, 't.p7s'), parts.cms);
    const pem = (await run('openssl', ['x509', '-inform', 'DER', '-outform', 'PEM'], { input: cert })).stdout;
    writeFileSync(join(dir, 'c.pem'), pem);
    const o = await run('openssl', ['cms', '-verify', '-binary', '-inform', 'DER', '-in', join(dir, 't.p7s'), '-content', join(dir, 't.body'), '-certfile', join(dir, 'c.pem'), '-nointern', '-noverify', '-out', '/dev/null']);
    expect(o.code).not.toBe(0);
  });

  test('an unsigned module is reported as such', async () => {
    expect(await verifyModuleSignature(ko, cert)).toMatchObject({ valid: false, signer: null, reason: 'module is not signed' });
  });
});

// Debian signs in-tree modules with a per-build key whose certificate lives only in vmlinux,
// so these cannot verify here, but the signer details must match modinfo's reading.
const withModules = installedKernels().filter((k) => {
  try {
    return readdirSync(`/lib/modules/${k}/kernel/drivers/net`).some((n) => n.startsWith('dummy.ko'));
  } catch {
    return false;
  }
});

describe.skipIf(withModules.length === 0)('Debian-signed in-tree module', () => {
  test('signer, key id and hash agree with modinfo', async () => {
    const k = withModules[0]!;
    const name = readdirSync(`/lib/modules/${k}/kernel/drivers/net`).find((n) => n.startsWith('dummy.ko'))!;
    const path = `/lib/modules/${k}/kernel/drivers/net/${name}`;
    const dir = tempDir();
    await generateMok(join(dir, 'k'), join(dir, 'c'));
    const r = await verifyModuleSignature(await readModule(path), readFileSync(join(dir, 'c')));
    expect(r.valid).toBe(false);
    expect([r.signer]).toEqual(await modinfoF(path, 'signer'));
    expect([r.keyId]).toEqual(await modinfoF(path, 'sig_key'));
    expect([r.hashAlgo]).toEqual(await modinfoF(path, 'sig_hashalgo'));
  });
});
