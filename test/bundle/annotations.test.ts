// index.json, the signature manifest, the signature file's unsigned lines
// and oci-layout are outside the signed bundle index: these tests alter each
// (re-hashing whatever refers to it, as an attacker would) and expect the
// verification to refuse, with and without a key, and the CLI never to show
// the altered value.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { canonicalJsonBytes } from '../../src/bundle/model/canonical-json.js';
import { openBundle } from '../../src/bundle/read/open.js';
import { signMinisign } from '../../src/sign/minisign.js';
import { writeBundle } from '../../src/bundle/write/writer.js';
import { KbundleError } from '../../src/util/errors.js';
import { rewriteTar } from '../helpers/bundles.js';
import { kbundle } from '../helpers/scratch.js';
import { makeSourceTree, realModules, spec, target, testKeys, tmp } from './fixtures.js';

const K = '6.1.0-56-amd64';
const REF = 'org.opencontainers.image.ref.name';
const CREATED = 'org.opencontainers.image.created';
const KEYID = 'org.kbundle.signer.keyid';

// Documents are edited freely here: their shape is what the code under test checks.
type Json = Record<string, any>;
const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const blobName = (d: string) => `blobs/sha256/${d.slice(7)}`;

async function failure(p: Promise<unknown>): Promise<KbundleError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  if (!(e instanceof KbundleError)) throw new Error(`expected a KbundleError, got ${String(e)}`);
  return e;
}

/** Replaces a blob by `bytes` and points `at` (a descriptor) at the new one. */
function replaceBlob(e: Map<string, Buffer>, at: Json, bytes: Buffer): void {
  e.delete(blobName(at.digest));
  at.digest = sha(bytes);
  at.size = bytes.length;
  e.set(blobName(at.digest), bytes);
}

/** index.json, the signature manifest and the signature file, parsed, for edits; `save` re-hashes and writes them back in that chain. */
function envelopeOf(e: Map<string, Buffer>) {
  const top = JSON.parse(e.get('index.json')!.toString()) as Json;
  const sigMan = JSON.parse(e.get(blobName(top.manifests[1].digest))!.toString()) as Json;
  const sigText = e.get(blobName(sigMan.layers[0].digest))!.toString();
  const index = JSON.parse(e.get(blobName(top.manifests[0].digest))!.toString()) as Json;
  return {
    top,
    sigMan,
    sigText,
    index,
    save(changed: { sigText?: string; sigMan?: boolean; index?: Buffer }) {
      if (changed.index) {
        replaceBlob(e, top.manifests[0], changed.index);
        sigMan.subject = { ...sigMan.subject, digest: top.manifests[0].digest, size: top.manifests[0].size };
      }
      if (changed.sigText !== undefined) replaceBlob(e, sigMan.layers[0], Buffer.from(changed.sigText));
      if (changed.sigText !== undefined || changed.sigMan || changed.index) replaceBlob(e, top.manifests[1], canonicalJsonBytes(sigMan));
      e.set('index.json', canonicalJsonBytes(top));
    },
  };
}

describe('verification binds everything outside the signed index', () => {
  let dir: string;
  let good: string;
  const { sk, pk } = testKeys();

  beforeAll(async () => {
    dir = tmp();
    good = join(dir, 'good.kbundle');
    await writeBundle(spec(makeSourceTree(dir), [target(K, 'x86_64', realModules().slice(0, 1))]), good);
  });

  const altered = async (name: string, edit: (e: Map<string, Buffer>) => void): Promise<string> => {
    const out = join(dir, `${name}.kbundle`);
    await rewriteTar(good, out, edit);
    return out;
  };
  /** index.json replaced by `bytes(top)`. */
  const withIndexJson = (name: string, bytes: (top: Json) => Buffer) =>
    altered(name, (e) => e.set('index.json', bytes(JSON.parse(e.get('index.json')!.toString()) as Json)));
  const editTop = (name: string, edit: (top: Json) => void) =>
    withIndexJson(name, (top) => {
      edit(top);
      return canonicalJsonBytes(top);
    });

  /** Refused with `code` and `message`, with the trusted key and without any (ls without --key, install --insecure). */
  async function refused(file: string, code: number, message: string): Promise<void> {
    for (const opts of [{ trustedKeys: [pk] }, { trustedKeys: [], skipSignature: true }]) {
      const err = await failure(openBundle(file, opts));
      expect([err.exitCode, err.message], opts.skipSignature ? 'without a key' : 'with the key').toEqual([code, `${file}: ${message}`]);
    }
  }

  test('the bundle as written verifies, from the library and the CLI, and ls shows the signed identity', async () => {
    const b = await openBundle(good, { trustedKeys: [pk] });
    expect([b.index.name, b.index.version, b.index.created]).toEqual(['hello', '1.0', '2023-11-14T22:13:20Z']);
    const pub = join(dir, 'k.pub');
    writeFileSync(pub, testKeys().pkText);
    const v = kbundle(['bundle', 'verify', good, '--key', pub]);
    expect([v.code, v.stderr]).toEqual([0, '']);
    expect(v.stdout).toMatch(/: OK \(signed by /);
    const ls = kbundle(['bundle', 'ls', good, '--key', pub, '--json']);
    expect(ls.code).toBe(0);
    expect(JSON.parse(ls.stdout)).toMatchObject({ name: 'hello', version: '1.0', created: '2023-11-14T22:13:20Z', signatureChecked: true });
  });

  test('repacked by another tar writer (other headers, same members) it still verifies: tar headers carry nothing that is read', async () => {
    const out = await altered('repacked', () => undefined);
    const b = await openBundle(out, { trustedKeys: [pk] });
    expect(b.index.rootDigest).toBe((await openBundle(good, { trustedKeys: [pk] })).index.rootDigest);
  });

  const annotationEdits: [string, (top: Json) => void, string][] = [
    ['ref name changed', (t) => (t.manifests[0].annotations[REF] = 'evil1:9.9'), `manifests[0].annotations["${REF}"] is "evil1:9.9", the signed bundle index gives "hello:1.0"`],
    ['created changed', (t) => (t.manifests[0].annotations[CREATED] = '2099-01-01T00:00:00Z'), `manifests[0].annotations["${CREATED}"] is "2099-01-01T00:00:00Z", the signed bundle index gives "2023-11-14T22:13:20Z"`],
    ['created removed', (t) => delete t.manifests[0].annotations[CREATED], `manifests[0].annotations["${CREATED}"] is (absent), the signed bundle index gives "2023-11-14T22:13:20Z"`],
    ['unknown annotation added', (t) => (t.manifests[0].annotations['org.example.note'] = 'trust me'), `manifests[0].annotations["org.example.note"] is "trust me", the signed bundle index gives (absent)`],
    ['annotation added to the signature descriptor', (t) => (t.manifests[1].annotations = { [REF]: 'evil1:9.9' }), `manifests[1].annotations is {"${REF}":"evil1:9.9"}, the signed bundle index gives (absent)`],
    ['annotations added to index.json itself', (t) => (t.annotations = { [REF]: 'evil1:9.9' }), `annotations is {"${REF}":"evil1:9.9"}, the signed bundle index gives (absent)`],
    ['another field added (platform)', (t) => (t.manifests[0].platform = { architecture: 'arm64', os: 'linux' }), `manifests[0].platform is {"architecture":"arm64","os":"linux"}, the signed bundle index gives (absent)`],
    ['manifests swapped', (t) => t.manifests.reverse(), `manifests[0].annotations is (absent), the signed bundle index gives {"${CREATED}":"2023-11-14T22:13:20Z","${REF}":"hello:1.0"}`],
  ];
  for (const [what, edit, message] of annotationEdits) {
    test(`index.json: ${what} → 35 naming index.json and the field`, async () => {
      const out = await editTop(what.replace(/\W+/g, '-'), edit);
      await refused(out, 35, `index.json does not match the signed bundle index: ${message}`);
    });
  }

  const formEdits: [string, (top: Json) => Buffer][] = [
    ['keys reordered', (t) => Buffer.from(JSON.stringify({ schemaVersion: t.schemaVersion, manifests: t.manifests, mediaType: t.mediaType }))],
    ['indented', (t) => Buffer.from(JSON.stringify(t, null, 2))],
    ['trailing newline', (t) => Buffer.from(`${canonicalJsonBytes(t).toString()}\n`)],
    ['a character escaped', (t) => Buffer.from(canonicalJsonBytes(t).toString().replace('"hello:1.0"', '"hell\\u006f:1.0"'))],
  ];
  for (const [what, bytes] of formEdits) {
    test(`index.json: same content, ${what} → 35`, async () => {
      const out = await withIndexJson(what.replace(/\W+/g, '-'), bytes);
      await refused(out, 35, 'index.json is not in canonical JSON form (whitespace, key order or escaping differ from what kbundle writes for the same content)');
    });
  }

  test('oci-layout: any other bytes → 35', async () => {
    const out = await altered('layout', (e) => e.set('oci-layout', Buffer.from('{"imageLayoutVersion": "1.0.0", "x": 1}')));
    await refused(out, 35, 'oci-layout is not {"imageLayoutVersion":"1.0.0"} byte for byte (whitespace, key order or extra members)');
  });

  test('signature manifest: signer key id annotation altered (re-hashed) → 35 naming the manifest and the field', async () => {
    let digest = '';
    const out = await altered('keyid', (e) => {
      const env = envelopeOf(e);
      env.sigMan.annotations[KEYID] = 'DEADBEEF';
      env.save({ sigMan: true });
      digest = env.top.manifests[1].digest;
    });
    await refused(out, 35, `signature manifest ${digest} does not match the signature: annotations["${KEYID}"] is "DEADBEEF", the signature gives "${pk.keyId}"`);
  });

  test('signature file: untrusted comment altered (re-hashed) → 30', async () => {
    const out = await altered('untrusted', (e) => {
      const env = envelopeOf(e);
      env.save({ sigText: env.sigText.replace(/^untrusted comment: .*/, 'untrusted comment: audited by evil1') });
    });
    await refused(out, 30, `the signature file is not in kbundle's form: its untrusted comment line is "untrusted comment: audited by evil1", kbundle writes "untrusted comment: signature from kbundle secret key ${pk.keyId}"`);
  });

  test("signed, but the trusted comment misstates name/version/created → 30", async () => {
    let root = '';
    const out = await altered('comment', (e) => {
      const env = envelopeOf(e);
      root = env.top.manifests[0].digest;
      const indexBytes = e.get(blobName(root))!;
      env.save({ sigText: signMinisign(indexBytes, sk, `kbundle-index=${root} name=evil1 version=9.9 created=4070908800`) });
    });
    await refused(out, 30, `signed trusted comment "kbundle-index=${root} name=evil1 version=9.9 created=4070908800" does not describe the bundle index, which gives "kbundle-index=${root} name=hello version=1.0 created=1700000000"`);
  });

  test('signed, but the bundle index ref name disagrees with its own title and version → 35', async () => {
    const out = await altered('signed-ref', (e) => {
      const env = envelopeOf(e);
      env.index.annotations[REF] = 'evil1:9.9';
      const bytes = canonicalJsonBytes(env.index);
      env.top.manifests[0].annotations[REF] = 'evil1:9.9';
      env.save({ index: bytes, sigText: signMinisign(bytes, sk, `kbundle-index=${sha(bytes)} name=hello version=1.0 created=1700000000`) });
    });
    await refused(out, 35, `bundle index annotation ${REF} is "evil1:9.9", its title and version give "hello:1.0"`);
  });

  test('CLI: verify and ls refuse an altered ref name and created date (35) and never print them', async () => {
    const out = await editTop('cli', (t) => {
      t.manifests[0].annotations[REF] = 'evil1:9.9';
      t.manifests[0].annotations[CREATED] = '2099-01-01T00:00:00Z';
    });
    const pub = join(dir, 'k.pub');
    writeFileSync(pub, testKeys().pkText);
    for (const args of [
      ['bundle', 'verify', out, '--key', pub],
      ['bundle', 'ls', out],
      ['bundle', 'ls', out, '--key', pub, '--json'],
    ]) {
      const r = kbundle(args);
      expect(r.code, args.join(' ')).toBe(35);
      expect(r.stderr).toContain(`${out}: index.json does not match the signed bundle index: manifests[0].annotations["${CREATED}"] is "2099-01-01T00:00:00Z"`);
      expect(r.stdout).toBe('');
    }
  });
});
