// The kernel-keyring side of the Secure Boot check (the refusal path is tested end to end in install.test.ts).
import { describe, expect, test } from 'vitest';
import { parseProcKeys, signerStatus } from '../../src/deploy/signer.js';

const PROC_KEYS = [
  '0db5bcc1 I------     1 perm 1f0b0000     0     0 keyring   .builtin_trusted_keys: 2',
  '1a2b3c4d I------     1 perm 1f010000     0     0 asymmetric Debian Secure Boot CA: 6ccece7e4c6c0d1f6149f3dd27dfcc5cbb419ea1: X509.rsa 4c6c0d1f []',
  '2b3c4d5e I------     1 perm 1f010000     0     0 asymmetric kbundle example module signing key (DO NOT TRUST): 689a88724a4b551aec962de252c525472aa6a8e0: X509.rsa []',
  '3c4d5e6f I--Q---     1 perm 3f010000     0     0 user      secret: 16',
].join('\n');

describe('module signer vs kernel keys', () => {
  test('parseProcKeys keeps asymmetric keys only', () => {
    expect(parseProcKeys(PROC_KEYS).map((k) => k.description.split(':')[0])).toEqual(['Debian Secure Boot CA', 'kbundle example module signing key (DO NOT TRUST)']);
  });
  test('trusted by CN or key id; untrusted otherwise; unknown without keyring info', () => {
    const keys = parseProcKeys(PROC_KEYS);
    expect(signerStatus({ signer: 'kbundle example module signing key (DO NOT TRUST)', keyId: '01:02' }, keys)).toBe('trusted');
    expect(signerStatus({ signer: 'Other', keyId: '68:9A:88:72:4A:4B:55:1A:EC:96:2D:E2:52:C5:25:47:2A:A6:A8:E0' }, keys)).toBe('trusted');
    expect(signerStatus({ signer: 'Someone Else', keyId: 'AA:BB:CC:DD:EE' }, keys)).toBe('untrusted');
    expect(signerStatus(null, keys)).toBe('untrusted');
    expect(signerStatus({ signer: 'Debian Secure Boot CA' }, null)).toBe('unknown');
  });
});
