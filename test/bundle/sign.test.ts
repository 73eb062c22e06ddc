import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { generateKeys, parsePublicKey, parseSecretKey, signMinisign, verifyMinisign } from '../../src/sign/minisign.js';
import { KbundleError } from '../../src/util/errors.js';
import { tmp } from './fixtures.js';

const hasMinisign = spawnSync('minisign', ['-v']).status === 0;

function keys() {
  const g = generateKeys();
  return { g, sk: parseSecretKey(g.secretKeyPem), pk: parsePublicKey(g.publicKeyText) };
}

describe('minisign-compatible signatures', () => {
  test('sign/verify round trip; deterministic; trusted comment returned', () => {
    const { sk, pk } = keys();
    const msg = Buffer.from('{"manifests":[]}');
    const s1 = signMinisign(msg, sk, 'kbundle-index=sha256:abc name=hello');
    expect(signMinisign(msg, sk, 'kbundle-index=sha256:abc name=hello')).toBe(s1);
    const lines = s1.split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[0]).toBe(`untrusted comment: signature from kbundle secret key ${pk.keyId}`);
    expect(Buffer.from(lines[1], 'base64').subarray(0, 2).toString()).toBe('ED');
    expect(Buffer.from(lines[1], 'base64')).toHaveLength(74);
    expect(verifyMinisign(msg, s1, [pk])).toEqual({ keyId: pk.keyId, trustedComment: 'kbundle-index=sha256:abc name=hello', algorithm: 'ED' });
  });

  test('key ids print like minisign: little-endian u64, upper-case hex, no zero padding', async () => {
    const { keyIdString } = await import('../../src/sign/minisign.js');
    expect(keyIdString(Buffer.from('c7b6af5e54a9c707', 'hex'))).toBe('7C7A9545EAFB6C7');
    expect(keyIdString(Buffer.from('173a07fff3c19f20', 'hex'))).toBe('209FC1F3FF073A17');
  });

  test('public key file is 42 bytes "Ed"+keynum+pk and round-trips', () => {
    const { g, pk } = keys();
    const b64 = g.publicKeyText.split('\n')[1];
    expect(b64.startsWith('RW')).toBe(true);
    expect(Buffer.from(b64, 'base64')).toHaveLength(42);
    expect(parsePublicKey(b64).raw.equals(pk.raw)).toBe(true);
    expect(() => parsePublicKey('RWQgarbage')).toThrow(/not a minisign Ed25519 public key/);
  });

  test('tampered message, signature, trusted comment → exit 30; other key → exit 33', () => {
    const { sk, pk } = keys();
    const other = keys().pk;
    const msg = Buffer.from('payload');
    const sig = signMinisign(msg, sk, 'tc');
    const expectCode = (f: () => unknown, code: number, re: RegExp) => {
      try {
        f();
      } catch (e) {
        expect((e as KbundleError).exitCode).toBe(code);
        expect((e as Error).message).toMatch(re);
        return;
      }
      throw new Error('did not throw');
    };
    expectCode(() => verifyMinisign(Buffer.from('payloaD'), sig, [pk]), 30, /does not match the signed content/);
    expectCode(() => verifyMinisign(msg, sig.replace('trusted comment: tc', 'trusted comment: tX'), [pk]), 30, /trusted comment has been altered/);
    const l = sig.split('\n');
    const raw = Buffer.from(l[1], 'base64');
    raw[40] ^= 1;
    l[1] = raw.toString('base64');
    expectCode(() => verifyMinisign(msg, l.join('\n'), [pk]), 30, /does not match/);
    expectCode(() => verifyMinisign(msg, 'hello\n', [pk]), 30, /malformed/);
    expectCode(() => verifyMinisign(msg, sig, [other]), 33, new RegExp(`signed by key ${pk.keyId}, which is not trusted \\(trusted keys: ${other.keyId}\\)`));
  });

  test('secret key must be Ed25519 PKCS#8 (exit 39)', () => {
    expect(() => parseSecretKey('nope')).toThrow(expect.objectContaining({ exitCode: 39 }));
  });

  test.runIf(hasMinisign)('minisign -V accepts our signature with our public key, and rejects a tampered file', () => {
    const d = tmp();
    const { g, sk } = keys();
    writeFileSync(join(d, 'index.json'), '{"a":1}');
    writeFileSync(join(d, 'k.pub'), g.publicKeyText);
    writeFileSync(join(d, 'index.json.minisig'), signMinisign(readFileSync(join(d, 'index.json')), sk, 'kbundle-index=sha256:x'));
    const ok = spawnSync('minisign', ['-V', '-p', join(d, 'k.pub'), '-m', join(d, 'index.json')], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('Trusted comment: kbundle-index=sha256:x');
    writeFileSync(join(d, 'index.json'), '{"a":2}');
    expect(spawnSync('minisign', ['-V', '-p', join(d, 'k.pub'), '-m', join(d, 'index.json')]).status).not.toBe(0);
  });

  test.runIf(hasMinisign)('we verify signatures made by minisign itself (ED and legacy Ed)', () => {
    const d = tmp();
    const gen = spawnSync('minisign', ['-G', '-W', '-p', join(d, 'm.pub'), '-s', join(d, 'm.key')], { encoding: 'utf8' });
    expect(gen.status).toBe(0);
    writeFileSync(join(d, 'f'), 'some bytes');
    const pk = parsePublicKey(readFileSync(join(d, 'm.pub'), 'utf8'));
    for (const legacy of [false, true]) {
      const args = ['-S', '-s', join(d, 'm.key'), '-m', join(d, 'f'), '-t', 'from minisign', ...(legacy ? ['-l'] : [])];
      expect(spawnSync('minisign', args, { encoding: 'utf8' }).status).toBe(0);
      const v = verifyMinisign(readFileSync(join(d, 'f')), readFileSync(join(d, 'f.minisig'), 'utf8'), [pk]);
      expect(v).toEqual({ keyId: pk.keyId, trustedComment: 'from minisign', algorithm: legacy ? 'Ed' : 'ED' });
      // minisign prints the same key id we derive from the key number.
      expect(readFileSync(join(d, 'm.pub'), 'utf8').split('\n')[0]).toBe(`untrusted comment: minisign public key ${pk.keyId}`);
    }
  });
});
