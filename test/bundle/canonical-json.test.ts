import { describe, expect, test } from 'vitest';
import { canonicalJson, canonicalJsonBytes } from '../../src/bundle/model/canonical-json.js';

describe('canonicalJson', () => {
  test('sorts keys at every depth and drops whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: 'x' } })).toBe('{"a":{"c":"x","d":[3,{"y":2,"z":1}]},"b":1}');
  });
  test('same document in another key order gives the same bytes', () => {
    expect(canonicalJsonBytes({ mediaType: 'm', size: 2, digest: 'd' }).equals(canonicalJsonBytes({ digest: 'd', size: 2, mediaType: 'm' }))).toBe(true);
  });
  test('orders keys by UTF-8 bytes, not UTF-16 units', () => {
    // U+FF61 sorts after U+1F600 in UTF-16 (0xFF61 > 0xD83D) but before it in UTF-8.
    expect(canonicalJson({ '\u{1F600}': 1, '\uFF61': 2 })).toBe('{"\uFF61":2,"\u{1F600}":1}');
  });
  test('writes UTF-8 without escaping non-ASCII', () => {
    expect(canonicalJsonBytes({ v: 'ü' }).toString('hex')).toBe(Buffer.from('{"v":"ü"}', 'utf8').toString('hex'));
  });
  test('omits undefined members', () => {
    expect(canonicalJson({ a: undefined, b: null })).toBe('{"b":null}');
  });
  test('refuses numbers that are not safe integers', () => {
    expect(() => canonicalJson({ x: 1.5 })).toThrow(/\/x is not a safe integer/);
    expect(() => canonicalJson({ x: NaN })).toThrow(/not a safe integer/);
  });
});
