/**
 * `kbundle bundle pull REF -o FILE`: fetch the bundle index (by tag or
 * digest), its manifests, the signature through the referrers API (or the
 * fallback tag `sha256-<hex>`), and every blob, each checked against the
 * digest and size that named it; rebuild the bundle file in a scratch
 * directory beside FILE; verify it as `bundle verify` / `bundle ls` would;
 * only then copy it to FILE (copyVerified: temp name, fsync, rename).
 */
import { createHash } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ArtifactType, copyVerified, MediaType, openBundle, type Descriptor, type ImageIndex, type PublicKey } from '../bundle/index.js';
import { PartFile, mkdirDurable, sweepTemps, tempPathFor } from '../util/atomic.js';
import { KbundleError } from '../util/errors.js';
import { RegistryClient, type ClientOptions } from './client.js';
import { mapLimit } from './concurrency.js';
import { ExitCode } from '../util/exit-codes.js';
import { asBundleIndex, blobsOf, parseJson, type BundleGraph, type JsonDoc } from './graph.js';
import { header, readBody } from './http.js';
import { assemblePulled } from './pull-assembly.js';
import { formatReference, type Reference } from './reference.js';
import { fallbackTag, signatureReferrers } from './referrers.js';

export interface PullOptions extends Omit<ClientOptions, 'actions'> {
  trustedKeys: PublicKey[];
  say: (line: string) => void;
}

export interface PullResult {
  reference: string;
  digest: string;
  file: string;
  size: number;
  signatureChecked: boolean;
  signature: { digest: string; keyId: string | null; via: 'referrers-api' | 'tag-schema' };
  blobs: { total: number; bytes: number };
  manifests: number;
  requests: number;
}

const ACCEPT = [MediaType.index, MediaType.manifest].join(', ');
const MAX_REDIRECTS = 5;

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** GET a manifest; its bytes must hash to `expect` (by digest) or to what the registry says it is (by tag). */
async function getManifest(client: RegistryClient, reference: string, expect: Descriptor | null, accept = ACCEPT): Promise<{ doc: JsonDoc; found: boolean }> {
  const url = client.url(`manifests/${reference}`);
  const res = await client.json({ method: 'GET', url, headers: { Accept: accept } }, [200, 404], `GET ${url.pathname}`);
  if (res.status === 404) return { doc: { digest: '', size: 0, mediaType: '', bytes: Buffer.alloc(0) }, found: false };
  const digest = sha256(res.body);
  const said = header(res.headers, 'docker-content-digest');
  const want = expect?.digest ?? (reference.startsWith('sha256:') ? reference : said);
  if ((want && digest !== want) || (said && said !== digest)) {
    throw new KbundleError(`GET ${url.pathname}: the registry served bytes with digest ${digest}, expected ${want ?? said}`, ExitCode.RegistryDigestMismatch);
  }
  if (expect && res.body.length !== expect.size) throw new KbundleError(`GET ${url.pathname}: ${res.body.length} bytes, the descriptor says ${expect.size}`, ExitCode.RegistryDigestMismatch);
  const mediaType = parseJson<{ mediaType?: string }>(res.body, `manifest ${reference}`).mediaType ?? header(res.headers, 'content-type') ?? '';
  return { doc: { digest, size: res.body.length, mediaType, bytes: res.body }, found: true };
}

/** GET a blob into `dest`, following redirects (credentials stay with the registry), hashing and counting as it arrives. */
async function getBlob(client: RegistryClient, blob: { digest: string; size: number }, dest: string): Promise<void> {
  let url = client.url(`blobs/${blob.digest}`);
  for (let hop = 0; ; hop++) {
    const res = await client.call({ method: 'GET', url });
    if ([301, 302, 303, 307, 308].includes(res.status) && hop < MAX_REDIRECTS) {
      res.stream.resume();
      url = client.location(res, `GET blob ${blob.digest}`);
      continue;
    }
    if (res.status !== 200) {
      const body = await readBody(res, 1 << 20).catch(() => Buffer.alloc(0));
      throw client.failure(res, body, `GET blob ${blob.digest}`);
    }
    const out = new PartFile(dest, false);
    const h = createHash('sha256');
    let n = 0;
    try {
      for await (const c of res.stream as AsyncIterable<Buffer>) {
        n += c.length;
        if (n > blob.size) {
          res.stream.destroy();
          throw new KbundleError(`blob ${blob.digest}: the registry sent more than the ${blob.size} bytes its descriptor declares`, ExitCode.RegistryDigestMismatch);
        }
        h.update(c);
        out.write(c);
      }
      const got = `sha256:${h.digest('hex')}`;
      if (n !== blob.size || got !== blob.digest) {
        throw new KbundleError(`blob ${blob.digest}: the registry sent ${n} bytes with digest ${got} (expected ${blob.size} bytes, ${blob.digest})`, ExitCode.RegistryDigestMismatch);
      }
      out.commit();
      return;
    } catch (e) {
      out.abort();
      if (e instanceof KbundleError) throw e;
      throw new KbundleError(`GET blob ${blob.digest}: connection lost (${(e as Error).message})`, ExitCode.RegistryNetwork);
    }
  }
}

/** The signature manifest descriptor(s) that refer to `root`: referrers API first, then the fallback tag. */
async function findSignature(client: RegistryClient, root: string): Promise<{ candidates: Descriptor[]; via: 'referrers-api' | 'tag-schema' }> {
  const url = client.url(`referrers/${root}`);
  url.searchParams.set('artifactType', ArtifactType.signature);
  const res = await client.json({ method: 'GET', url, headers: { Accept: MediaType.index } }, [200, 404, 400, 405], `GET ${url.pathname}`);
  if (res.status === 200) {
    const list = signatureReferrers(parseJson<ImageIndex>(res.body, `referrers of ${root}`), ArtifactType.signature);
    if (list.length) return { candidates: list, via: 'referrers-api' };
  }
  const tag = fallbackTag(root);
  const fb = await getManifest(client, tag, null, MediaType.index);
  const list = fb.found ? signatureReferrers(parseJson<ImageIndex>(fb.doc.bytes, `fallback referrers index ${tag}`), ArtifactType.signature) : [];
  return { candidates: list, via: 'tag-schema' };
}

export async function pullBundle(ref: Reference, output: string, opts: PullOptions): Promise<PullResult> {
  if (!ref.tag && !ref.digest) throw new KbundleError(`${formatReference(ref)}: name a tag (REPO:TAG) or a digest (REPO@sha256:...) to pull`, ExitCode.RegistryBadReference);
  const client = new RegistryClient(ref, { ...opts, actions: 'pull' });
  const named = formatReference(ref);
  const top = await getManifest(client, ref.digest ?? ref.tag!, null);
  if (!top.found) throw new KbundleError(`${named}: not found in ${ref.registry}`, ExitCode.RegistryNotFound);
  const index = asBundleIndex(top.doc.bytes, `${named} (${top.doc.digest})`);
  opts.say(`${named}: bundle ${top.doc.digest}`);

  const children = await mapLimit(index.manifests, 4, async (d) => {
    const m = await getManifest(client, d.digest, d);
    if (!m.found) throw new KbundleError(`${named}: manifest ${d.digest} of the bundle is missing from the registry`, ExitCode.RegistryNotFound);
    return m.doc;
  });
  const sig = await findSignature(client, top.doc.digest);
  if (!sig.candidates.length) {
    throw new KbundleError(
      `${named}: no signature refers to ${top.doc.digest} (neither the referrers API nor the tag ${fallbackTag(top.doc.digest)} lists one); copies made without the referrer (e.g. skopeo copy) lose it: push the bundle file with kbundle`,
      ExitCode.RegistryNotABundle,
    );
  }
  // Several signatures (re-pushed with another key): prefer one by a trusted key.
  const trusted = new Set(opts.trustedKeys.map((k) => k.keyId));
  const chosen = sig.candidates.find((d) => trusted.has(d.annotations?.['org.kbundle.signer.keyid'] ?? '')) ?? sig.candidates[0]!;
  const sigDoc = await getManifest(client, chosen.digest, chosen);
  if (!sigDoc.found) throw new KbundleError(`${named}: signature manifest ${chosen.digest} is listed but missing`, ExitCode.RegistryNotFound);
  const graph: BundleGraph = { index: top.doc, manifests: children, signature: sigDoc.doc, blobs: blobsOf([...children.map((c) => c.bytes), sigDoc.doc.bytes]) };

  const out = output;
  await mkdirDurable(dirname(out));
  // The scratch directory carries atomic.ts's temp name (with our pid), so a pull that was killed
  // leaves nothing the next one does not sweep away (only names whose owner process is gone).
  await sweepTemps([dirname(out)]);
  const scratch = tempPathFor(out);
  await mkdir(scratch);
  try {
    const files = new Map<string, string>();
    let bytes = 0;
    await mapLimit(graph.blobs, 3, async (b) => {
      const f = join(scratch, b.digest.slice(7));
      await getBlob(client, b, f);
      files.set(b.digest, f);
      bytes += b.size;
      opts.say(`  blob ${b.digest.slice(7, 19)} ${b.mediaType} ${b.size} bytes`);
      return null;
    });
    const assembled = join(scratch, 'bundle.kbundle');
    await assemblePulled(graph, { files }, assembled, scratch);
    const bundle = await openBundle(assembled, { trustedKeys: opts.trustedKeys, skipSignature: opts.trustedKeys.length === 0 });
    const { size } = await copyVerified(bundle, out);
    return {
      reference: named,
      digest: top.doc.digest,
      file: out,
      size,
      signatureChecked: opts.trustedKeys.length > 0,
      signature: { digest: sigDoc.doc.digest, keyId: bundle.index.signer.keyId, via: sig.via },
      blobs: { total: graph.blobs.length, bytes },
      manifests: children.length + 2,
      requests: client.traffic.requests,
    };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
