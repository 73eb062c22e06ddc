// The 12-byte module_signature trailer, byte for byte.
import { describe, expect, test } from 'vitest';
import {
  appendSignature,
  decodeModuleSignature,
  encodeModuleSignature,
  MODULE_SIG_MAGIC,
  splitSignedModule,
  stripSignature,
} from '../../src/sign/appended-signature.js';
import { KbundleError } from '../../src/util/errors.js';

const body = Buffer.from('\x7fELF body bytes', 'latin1');
const cms = Buffer.alloc(0x2a9, 0x30);

describe('appended signature', () => {
  test('layout: body, CMS, struct (id_type 2, big-endian length), marker', () => {
    const out = appendSignature(body, cms);
    expect(out.length).toBe(body.length + cms.length + 12 + 28);
    expect(out.subarray(0, body.length).equals(body)).toBe(true);
    expect(out.subarray(body.length, body.length + cms.length).equals(cms)).toBe(true);
    // The real tail of a module with a 681-byte CMS (docs/formats/module-signature.md).
    expect(out.subarray(out.length - 40, out.length - 28).toString('hex')).toBe('000002000000000000000' + '2a9'.padStart(3, '0'));
    expect(out.subarray(out.length - 28).toString('latin1')).toBe('~Module signature appended~\n');
  });

  test('split inverts append', () => {
    const parts = splitSignedModule(appendSignature(body, cms))!;
    expect(parts.body.equals(body)).toBe(true);
    expect(parts.cms.equals(cms)).toBe(true);
    expect(parts.info).toEqual({ algo: 0, hash: 0, idType: 2, signerLen: 0, keyIdLen: 0, sigLen: 0x2a9 });
    expect(stripSignature(appendSignature(body, cms)).equals(body)).toBe(true);
  });

  test('unsigned input gives null and strips to itself', () => {
    expect(splitSignedModule(body)).toBeNull();
    expect(stripSignature(body)).toBe(body);
  });

  test('struct encode/decode round trip', () => {
    const info = { algo: 1, hash: 2, idType: 3, signerLen: 4, keyIdLen: 5, sigLen: 0x01020304 };
    const raw = encodeModuleSignature(info);
    expect(raw.toString('hex')).toBe('010203040500000001020304');
    expect(decodeModuleSignature(raw)).toEqual(info);
  });

  test('malformed trailers are errors, as the kernel rejects them', () => {
    const good = appendSignature(body, cms);
    const withInfo = (patch: (b: Buffer) => void) => {
      const b = Buffer.from(good);
      patch(b.subarray(b.length - 40, b.length - 28));
      return b;
    };
    expect(() => splitSignedModule(withInfo((i) => i.writeUInt32BE(good.length, 8)))).toThrow(KbundleError);
    expect(() => splitSignedModule(withInfo((i) => i.writeUInt32BE(0, 8)))).toThrow(/length 0/);
    expect(() => splitSignedModule(withInfo((i) => (i[2] = 1)))).toThrow(/id_type 1/);
    expect(() => splitSignedModule(withInfo((i) => (i[3] = 1)))).toThrow(/legacy/);
    expect(() => splitSignedModule(Buffer.concat([Buffer.alloc(3), MODULE_SIG_MAGIC]))).toThrow(/truncated/);
  });
});
