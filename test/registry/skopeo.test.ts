// Interop with skopeo 1.9.3 (Debian 12), both directions, against a real
// registry. What happens is documented in docs/registry.md ("skopeo"):
// skopeo reads what kbundle pushed byte for byte (inspect --raw) and copies
// every manifest and blob unchanged, but re-serialises the bundle index
// without `artifactType` and does not copy the signature referrer, so its
// copy is no longer the signed bundle; kbundle refuses it with a clear
// reason. A kbundle push over skopeo's copy reuses all of skopeo's blobs.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/util/exit-codes.js';
import { readEntries } from '../helpers/bundles.js';
import { sh } from '../helpers/scratch.js';
import { buildBundle, K612, PUB } from '../deploy/helpers.js';
import { kb, sha256File, startRegistry, type Registry } from './registry.js';

const work = mkdtempSync(join(tmpdir(), 'kbundle-skopeo-'));
const TLS = ['--src-tls-verify=false', '--dest-tls-verify=false'];
let reg: Registry;
let bundle: string;
let root: string;

beforeAll(async () => {
  bundle = buildBundle([K612]);
  reg = await startRegistry(null);
  const r = await kb(['bundle', 'push', bundle, `${reg.host}/kb/hello:1.0`, '--plain-http', '--json']);
  expect(r.code).toBe(0);
  root = (JSON.parse(r.stdout) as { digest: string }).digest;
});
afterAll(async () => {
  await reg?.stop();
});

function skopeo(args: string[]) {
  const r = sh('skopeo', args);
  if (r.code !== 0) throw new Error(`skopeo ${args.join(' ')}: ${r.stderr}`);
  return r;
}

describe('kbundle push → skopeo', () => {
  it('skopeo inspect --raw returns the signed bundle index byte for byte', () => {
    const raw = sh('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/kb/hello:1.0`]);
    expect(raw.code).toBe(0);
    expect(`sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`).toBe(root);
  });

  it('skopeo copy --all to an oci-archive keeps every manifest and blob, rewrites the index, drops the signature: bundle ls refuses it (35)', async () => {
    const out = join(work, 'skopeo-copy.tar');
    skopeo(['copy', '--all', ...TLS, `docker://${reg.host}/kb/hello:1.0`, `oci-archive:${out}:hello:1.0`]);
    const ours = await readEntries(bundle);
    const theirs = await readEntries(out);
    const bundleIndex = JSON.parse(ours.get(`blobs/sha256/${root.slice(7)}`)!.toString('utf8')) as { manifests: { digest: string }[] };
    for (const m of bundleIndex.manifests) expect(theirs.get(`blobs/sha256/${m.digest.slice(7)}`)?.equals(ours.get(`blobs/sha256/${m.digest.slice(7)}`)!)).toBe(true);
    expect(theirs.has(`blobs/sha256/${root.slice(7)}`)).toBe(false); // the index itself was re-serialised
    const top = JSON.parse(theirs.get('index.json')!.toString('utf8')) as { manifests: { digest: string }[] };
    const rewritten = JSON.parse(theirs.get(`blobs/sha256/${top.manifests[0]!.digest.slice(7)}`)!.toString('utf8')) as Record<string, unknown>;
    expect(rewritten.artifactType).toBeUndefined();
    const ls = await kb(['bundle', 'ls', out, '--key', PUB]);
    expect(ls.code).toBe(35);
  });
});

describe('skopeo → registry → kbundle pull', () => {
  it('a bundle file copied in by skopeo is not the signed bundle (97); kbundle push over it sends no blob bytes and makes it pullable', async () => {
    skopeo(['copy', '--all', ...TLS, `oci-archive:${bundle}:hello:1.0`, `docker://${reg.host}/kb/viaskopeo:1.0`]);
    const out = join(work, 'viaskopeo.kbundle');
    const p = await kb(['bundle', 'pull', `${reg.host}/kb/viaskopeo:1.0`, '-o', out, '--plain-http', '--key', PUB]);
    expect(p.code).toBe(ExitCode.RegistryNotABundle);
    expect(p.stderr).toContain('is not a kbundle bundle (mediaType application/vnd.oci.image.index.v1+json, artifactType none');
    const push = await kb(['bundle', 'push', bundle, `${reg.host}/kb/viaskopeo:1.0`, '--plain-http', '--json']);
    expect(push.code).toBe(0);
    const pj = JSON.parse(push.stdout) as { blobs: { pushed: number; total: number }; bytes: { uploaded: number } };
    // skopeo uploaded every config and layer unchanged; only the signature manifest's two blobs (its empty
    // config `{}` and the minisign file), which the index skopeo copied does not reach, travel now.
    expect(pj.blobs.pushed).toBe(2);
    expect(pj.bytes.uploaded).toBeLessThan(1024);
    expect((await kb(['bundle', 'pull', `${reg.host}/kb/viaskopeo:1.0`, '-o', out, '--plain-http', '--key', PUB, '-q'])).code).toBe(0);
    expect(sha256File(out)).toBe(sha256File(bundle));
  });

  it('skopeo copy --preserve-digests refuses the bundle index outright (skopeo 1.9.3)', () => {
    const r = sh('skopeo', ['copy', '--all', '--preserve-digests', ...TLS, `docker://${reg.host}/kb/hello:1.0`, `docker://${reg.host}/kb/mirror:1.0`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('Instructed to preserve digests');
    expect(readFileSync(bundle).length).toBeGreaterThan(0);
  });
});
