// generateMok() and certificateInfo() against openssl's own reading of the files.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { certificateDer, certificateInfo, generateMok, loadCertificate, loadKeyPair, loadPrivateKey } from '../../src/sign/keys.js';
import { KbundleError } from '../../src/util/errors.js';
import { run, tempDir } from './tools.js';

describe('generateMok', () => {
  test('creates a DKMS-style RSA-2048 key (PEM, private) and self-signed DER certificate for 36500 days', async () => {
    const dir = tempDir();
    const key = join(dir, 'sub/mok.key');
    const cert = join(dir, 'sub/mok.pub');
    const info = await generateMok(key, cert);
    expect(readFileSync(key, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(statSync(key).mode & 0o077).toBe(0);
    const der = readFileSync(cert);
    expect(der[0]).toBe(0x30); // DER, not PEM
    const x = new X509Certificate(der);
    expect(x.subject).toBe('CN=DKMS module signing key');
    expect(x.issuer).toBe(x.subject);
    expect(x.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(x.checkPrivateKey(createPrivateKey(readFileSync(key)))).toBe(true);
    const days = (Date.parse(x.validTo) - Date.parse(x.validFrom)) / 86_400_000;
    expect(days).toBe(36500);
    expect(info.issuerCN).toBe('DKMS module signing key');
    const text = (await run('openssl', ['x509', '-inform', 'DER', '-in', cert, '-noout', '-text'])).stdout;
    expect(text).not.toMatch(/Code Signing/);
  });

  test('codeSigningEku adds extendedKeyUsage=codeSigning (DKMS 3.1.7+)', async () => {
    const dir = tempDir();
    await generateMok(join(dir, 'k'), join(dir, 'c'), { codeSigningEku: true });
    const text = (await run('openssl', ['x509', '-inform', 'DER', '-in', join(dir, 'c'), '-noout', '-text'])).stdout;
    expect(text).toMatch(/Extended Key Usage:\s*\n\s*Code Signing/);
  });
});

describe('certificateInfo', () => {
  test('serial in modinfo notation equals openssl -serial; SKID equals openssl -ext', async () => {
    const dir = tempDir();
    await generateMok(join(dir, 'k'), join(dir, 'c'));
    const info = certificateInfo(readFileSync(join(dir, 'c')));
    const serial = (await run('openssl', ['x509', '-inform', 'DER', '-in', join(dir, 'c'), '-noout', '-serial'])).stdout.trim().replace(/^serial=/, '');
    // openssl prints the magnitude in uppercase hex; modinfo's sig_key is the same with colons.
    expect(info.serialHex.replace(/:/g, '')).toBe(serial);
    expect(info.serialHex).toMatch(/^[0-9A-F]{2}(:[0-9A-F]{2})*$/);
    const ext = (await run('openssl', ['x509', '-inform', 'DER', '-in', join(dir, 'c'), '-noout', '-ext', 'subjectKeyIdentifier'])).stdout;
    expect(ext).toContain(info.subjectKeyIdHex!);
    expect(info.keyType).toBe('rsa');
  });

  test('a serial with the high bit set loses its DER sign byte, as modinfo prints it', async () => {
    const dir = tempDir();
    const r = await run('openssl', ['req', '-new', '-x509', '-nodes', '-days', '1', '-subj', '/CN=hi', '-newkey', 'rsa:2048', '-set_serial', '0x80AB', '-keyout', join(dir, 'k'), '-outform', 'DER', '-out', join(dir, 'c')]);
    expect(r.code, r.stderr).toBe(0);
    expect(certificateInfo(readFileSync(join(dir, 'c'))).serialHex).toBe('80:AB');
  });
});

describe('loading', () => {
  test('PEM and DER certificates load to the same DER; a key+cert PEM bundle yields the certificate', async () => {
    const dir = tempDir();
    await generateMok(join(dir, 'k'), join(dir, 'c'));
    const der = readFileSync(join(dir, 'c'));
    const pem = (await run('openssl', ['x509', '-inform', 'DER', '-outform', 'PEM'], { input: der })).stdout;
    expect(certificateDer(Buffer.from(pem)).equals(der)).toBe(true);
    const bundle = Buffer.from(readFileSync(join(dir, 'k'), 'utf8') + pem);
    expect(certificateDer(bundle).equals(der)).toBe(true);
    expect((await loadCertificate(join(dir, 'c'))).equals(der)).toBe(true);
    const pair = await loadKeyPair(join(dir, 'k'), join(dir, 'c'));
    expect(pair.certDer.equals(der)).toBe(true);
  });

  test('errors are KbundleErrors with the path', async () => {
    const dir = tempDir();
    await expect(loadPrivateKey(join(dir, 'missing.key'))).rejects.toThrow(/missing\.key/);
    writeFileSync(join(dir, 'junk'), 'not a key');
    await expect(loadPrivateKey(join(dir, 'junk'))).rejects.toBeInstanceOf(KbundleError);
    await expect(loadCertificate(join(dir, 'junk'))).rejects.toBeInstanceOf(KbundleError);
  });
});
