// The pure parts of the registry client: REF parsing, WWW-Authenticate
// parsing, the push plan (what HEAD answers mean for what is sent), and the
// referrers fallback index.
import { describe, expect, it } from 'vitest';
import { parseReference } from '../../src/registry/reference.js';
import { parseChallenges } from '../../src/registry/www-authenticate.js';
import { planPush } from '../../src/registry/push-plan.js';
import { fallbackTag, withReferrer } from '../../src/registry/referrers.js';
import type { BundleGraph, JsonDoc } from '../../src/registry/graph.js';
import { parseSize } from '../../src/cli/commands/registry.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;

describe('parseReference', () => {
  it('splits host, repository, tag and digest', () => {
    expect(parseReference('127.0.0.1:5000/kbundle/hello:1.0')).toEqual({ registry: '127.0.0.1:5000', endpoint: '127.0.0.1:5000', repository: 'kbundle/hello', tag: '1.0' });
    expect(parseReference(`localhost/a@${D('a')}`)).toEqual({ registry: 'localhost', endpoint: 'localhost', repository: 'a', digest: D('a') });
    expect(parseReference('registry.example.com/team/mods')).toEqual({ registry: 'registry.example.com', endpoint: 'registry.example.com', repository: 'team/mods' });
    expect(parseReference('docker.io/hello:2')).toMatchObject({ endpoint: 'registry-1.docker.io', repository: 'library/hello', tag: '2' });
  });
  it('refuses what the distribution spec does not allow, saying why', () => {
    expect(parseReference('kbundle/hello:1.0')).toMatch(/name the registry host first/);
    expect(parseReference('https://r.example/a:1')).toMatch(/without a URL scheme/);
    expect(parseReference('r.example/Upper:1')).toMatch(/repository "Upper" is not valid/);
    expect(parseReference('r.example/a:.bad')).toMatch(/tag ".bad" is not valid/);
    expect(parseReference('r.example/a@sha256:abc')).toMatch(/not sha256:<64 lowercase hex>/);
  });
});

describe('parseChallenges', () => {
  it('reads Bearer and Basic challenges with quoted parameters', () => {
    expect(parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' } },
    ]);
    expect(parseChallenges('Basic realm="kbundle-test"')).toEqual([{ scheme: 'basic', params: { realm: 'kbundle-test' } }]);
    expect(parseChallenges(['Basic realm=x', 'Bearer realm="r", error="insufficient_scope"'])).toEqual([
      { scheme: 'basic', params: { realm: 'x' } },
      { scheme: 'bearer', params: { realm: 'r', error: 'insufficient_scope' } },
    ]);
    expect(parseChallenges(undefined)).toEqual([]);
  });
});

function doc(c: string, size = 100): JsonDoc {
  return { digest: D(c), size, mediaType: 'application/vnd.oci.image.manifest.v1+json', bytes: Buffer.alloc(size) };
}
const graph: BundleGraph = {
  index: { ...doc('1'), mediaType: 'application/vnd.oci.image.index.v1+json' },
  manifests: [doc('2'), doc('3')],
  signature: doc('4'),
  blobs: [
    { digest: D('a'), size: 1000, mediaType: 'application/vnd.kbundle.module.v1' },
    { digest: D('b'), size: 50, mediaType: 'application/vnd.kbundle.config.v1+json' },
    { digest: D('c'), size: 7, mediaType: 'application/vnd.kbundle.signature.v1.minisig' },
  ],
};

describe('planPush', () => {
  it('an empty registry gets everything, children before the index before the signature', () => {
    const p = planPush(graph, { blobs: new Set(), manifests: new Set(), tagDigest: null }, '1.0');
    expect(p.send.map((b) => b.digest)).toEqual([D('a'), D('b'), D('c')]);
    expect(p.bytes).toEqual({ total: 1057, send: 1057, skip: 0 });
    expect(p.manifests.map((m) => m.reference)).toEqual([D('2'), D('3'), '1.0', D('4')]);
  });
  it('blobs and manifests the registry has are skipped; a tag that already names the bundle is not re-put', () => {
    const p = planPush(graph, { blobs: new Set([D('a')]), manifests: new Set([D('2'), D('4')]), tagDigest: D('1') }, '1.0');
    expect(p.send.map((b) => b.digest)).toEqual([D('b'), D('c')]);
    expect(p.bytes).toEqual({ total: 1057, send: 57, skip: 1000 });
    expect(p.manifests.map((m) => m.reference)).toEqual([D('3')]);
    expect(p.skippedManifests.map((m) => m.digest)).toEqual([D('2'), D('1'), D('4')]);
  });
  it('a tag that names another bundle is moved; without a tag the index goes by digest', () => {
    expect(planPush(graph, { blobs: new Set(), manifests: new Set([D('1')]), tagDigest: D('9') }, '1.0').manifests.map((m) => m.reference)).toContain('1.0');
    expect(planPush(graph, { blobs: new Set(), manifests: new Set([D('1')]), tagDigest: null }, null).manifests.map((m) => m.reference)).toEqual([D('2'), D('3'), D('4')]);
  });
});

describe('referrers fallback (tag schema)', () => {
  const ref = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D('4'), size: 100, artifactType: 'application/vnd.kbundle.signature.v1' };
  it('tag sha256-<hex>; a new index lists the referrer; an existing one keeps other referrers', () => {
    expect(fallbackTag(D('1'))).toBe(`sha256-${'1'.repeat(64)}`);
    const fresh = JSON.parse(withReferrer(null, ref)!.toString('utf8'));
    expect(fresh).toEqual({ manifests: [ref], mediaType: 'application/vnd.oci.image.index.v1+json', schemaVersion: 2 });
    const other = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: D('5'), size: 9, artifactType: 'application/spdx+json' };
    const merged = JSON.parse(withReferrer({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [other] }, ref)!.toString('utf8'));
    expect(merged.manifests).toEqual([other, ref]);
    expect(withReferrer(merged, ref)).toBeNull();
  });
});

describe('--chunk-size', () => {
  it('bytes with binary suffixes', () => {
    expect(parseSize('1048576')).toBe(1048576);
    expect(parseSize('512K')).toBe(524288);
    expect(parseSize('4M')).toBe(4 << 20);
    expect(parseSize('4MiB')).toBe(4 << 20);
    expect(parseSize('x')).toBeNull();
  });
});
