/**
 * `kbundle bundle push FILE REF`: verify the bundle, ask the registry what
 * it already has (HEAD), send the rest (blobs, then manifests children
 * first, the bundle index under the tag), then attach the signature as a
 * referrer of the bundle index.
 */
import { ArtifactType, MediaType, openBundle, type ImageIndex, type PublicKey } from '../bundle/index.js';
import { KbundleError } from '../util/errors.js';
import { RegistryClient, type ClientOptions } from './client.js';
import { ExitCode } from '../util/exit-codes.js';
import { blobsOf, parseJson, referrerDescriptor, type BundleGraph, type JsonDoc } from './graph.js';
import { header } from './http.js';
import { planPush, type PushPlan } from './push-plan.js';
import { formatReference, type Reference } from './reference.js';
import { fallbackTag, withReferrer } from './referrers.js';
import { uploadChunked, uploadMonolithic } from './upload.js';
import { mapLimit } from './concurrency.js';

export interface PushOptions extends Omit<ClientOptions, 'actions'> {
  trustedKeys: PublicKey[];
  /** Chunked upload (PATCH) with this many bytes a request; 0: monolithic. */
  chunkSize: number;
  say: (line: string) => void;
}

export interface PushResult {
  reference: string;
  repository: string;
  tag: string | null;
  /** Root digest: the bundle index, what `bundle pull REF@DIGEST` names. */
  digest: string;
  signatureChecked: boolean;
  blobs: { total: number; pushed: number; skipped: number };
  bytes: { total: number; uploaded: number; skipped: number };
  manifests: { total: number; pushed: number; skipped: number; bytes: number };
  referrer: { digest: string; via: 'referrers-api' | 'tag-schema'; tag?: string };
  upload: 'monolithic' | 'chunked';
  chunks: number;
  /** Request bodies sent, all requests (blobs + manifests + fallback index). */
  sentBytes: number;
  requests: number;
}

/** The graph of a verified bundle file, from the JSON the verification kept in memory. */
function graphOf(b: Awaited<ReturnType<typeof openBundle>>): BundleGraph {
  const top = parseJson<ImageIndex>(b.verified.indexJson, 'index.json', ExitCode.BadLayout);
  const doc = (digest: string, mediaType: string): JsonDoc => {
    const bytes = b.jsonBlob(digest);
    return { digest, size: bytes.length, mediaType, bytes };
  };
  const sigDesc = top.manifests.find((d) => d.artifactType === ArtifactType.signature)!;
  const index = doc(b.index.rootDigest, MediaType.index);
  const children = parseJson<ImageIndex>(index.bytes, 'bundle index', ExitCode.BadLayout).manifests.map((d) => doc(d.digest, MediaType.manifest));
  const signature = doc(sigDesc.digest, MediaType.manifest);
  return { index, manifests: children, signature, blobs: blobsOf([...children.map((c) => c.bytes), signature.bytes]) };
}

export async function pushBundle(file: string, ref: Reference, opts: PushOptions): Promise<PushResult> {
  const bundle = await openBundle(file, { trustedKeys: opts.trustedKeys, skipSignature: opts.trustedKeys.length === 0 });
  const graph = graphOf(bundle);
  let tag: string | null = ref.tag ?? null;
  if (ref.digest && ref.digest !== graph.index.digest) {
    throw new KbundleError(`${formatReference(ref)} names ${ref.digest}, but ${file} is ${graph.index.digest}`, ExitCode.RegistryBadReference);
  }
  if (!tag && !ref.digest) tag = bundle.index.version;
  const client = new RegistryClient(ref, { ...opts, actions: 'pull,push' });
  await client.ping();

  // What the registry has: one HEAD each, a few at a time.
  const have = await mapLimit(graph.blobs, 4, async (b) => ((await client.exists('blobs', b.digest)) === null ? null : b.digest));
  const manifestDocs = [...graph.manifests, graph.index, graph.signature];
  const haveM = await mapLimit(manifestDocs, 4, async (m) => ((await client.exists('manifests', m.digest, m.mediaType)) === null ? null : m.digest));
  let tagDigest: string | null = null;
  if (tag) {
    const url = client.url(`manifests/${tag}`);
    const res = await client.json({ method: 'HEAD', url, headers: { Accept: MediaType.index } }, [200, 404], `HEAD ${url.pathname}`);
    if (res.status === 200) tagDigest = header(res.headers, 'docker-content-digest') ?? null;
  }
  const plan: PushPlan = planPush(graph, { blobs: new Set(have.filter(isString)), manifests: new Set(haveM.filter(isString)), tagDigest }, tag);
  opts.say(`${formatReference({ ...ref, tag: tag ?? undefined })}: ${plan.send.length} of ${graph.blobs.length} blobs to send (${plan.bytes.send} of ${plan.bytes.total} bytes; ${plan.skip.length} already there)`);

  let chunks = 0;
  await mapLimit(plan.send, 2, async (b) => {
    const blob = { digest: b.digest, size: b.size, open: () => bundle.readBlob(b.digest) };
    if (opts.chunkSize > 0) {
      const n = (await uploadChunked(client, blob, opts.chunkSize)).chunks;
      chunks += n;
    }
    else await uploadMonolithic(client, blob);
    opts.say(`  blob ${b.digest.slice(7, 19)} ${b.mediaType} ${b.size} bytes sent`);
    return null;
  });

  let manifestBytes = 0;
  let subjectHeader = false;
  for (const m of plan.manifests) {
    const url = client.url(`manifests/${m.reference}`);
    const res = await client.put(url, m.doc.bytes, m.doc.mediaType, [201], `PUT ${url.pathname}`);
    manifestBytes += m.doc.bytes.length;
    const stored = header(res.headers, 'docker-content-digest');
    if (stored && stored !== m.doc.digest) throw new KbundleError(`PUT ${url.pathname}: ${ref.registry} stored the manifest as ${stored}, not ${m.doc.digest}`, ExitCode.RegistryDigestMismatch);
    if (m.doc === graph.signature && header(res.headers, 'oci-subject') === graph.index.digest) subjectHeader = true;
  }
  opts.say(`  ${plan.manifests.length} manifest(s) sent, ${plan.skippedManifests.length} already there`);

  const referrer = await attachReferrer(client, graph, subjectHeader);
  opts.say(`  signature ${graph.signature.digest.slice(7, 19)} attached as a referrer of ${graph.index.digest} (${referrer.via === 'referrers-api' ? 'referrers API' : `fallback tag ${referrer.tag}`})`);
  return {
    reference: formatReference({ ...ref, tag: tag ?? undefined, digest: undefined }),
    repository: ref.repository,
    tag,
    digest: graph.index.digest,
    signatureChecked: opts.trustedKeys.length > 0,
    blobs: { total: graph.blobs.length, pushed: plan.send.length, skipped: plan.skip.length },
    bytes: { total: plan.bytes.total, uploaded: plan.bytes.send, skipped: plan.bytes.skip },
    manifests: { total: manifestDocs.length, pushed: plan.manifests.length, skipped: plan.skippedManifests.length, bytes: manifestBytes },
    referrer: { digest: graph.signature.digest, ...referrer },
    upload: opts.chunkSize > 0 ? 'chunked' : 'monolithic',
    chunks,
    sentBytes: client.traffic.bodyBytes,
    requests: client.traffic.requests,
  };
}

/**
 * Makes the signature findable from the bundle index: through the
 * referrers API when the registry has one (it said OCI-Subject on the PUT,
 * or lists the signature already), else through the fallback tag.
 */
async function attachReferrer(client: RegistryClient, graph: BundleGraph, subjectHeader: boolean): Promise<{ via: 'referrers-api' | 'tag-schema'; tag?: string }> {
  if (subjectHeader) return { via: 'referrers-api' };
  const api = client.url(`referrers/${graph.index.digest}`);
  const res = await client.json({ method: 'GET', url: api, headers: { Accept: MediaType.index } }, [200, 404, 400, 405], `GET ${api.pathname}`);
  if (res.status === 200) {
    const list = parseJson<ImageIndex>(res.body, `referrers of ${graph.index.digest}`);
    if ((list.manifests ?? []).some((d) => d.digest === graph.signature.digest)) return { via: 'referrers-api' };
  }
  const tag = fallbackTag(graph.index.digest);
  const url = client.url(`manifests/${tag}`);
  const cur = await client.json({ method: 'GET', url, headers: { Accept: MediaType.index } }, [200, 404], `GET ${url.pathname}`);
  const existing = cur.status === 200 ? parseJson<ImageIndex>(cur.body, `fallback referrers index ${tag}`) : null;
  const next = withReferrer(existing, referrerDescriptor(graph.signature));
  if (next) await client.put(url, next, MediaType.index, [201], `PUT ${url.pathname}`);
  return { via: 'tag-schema', tag };
}

function isString(x: string | null): x is string {
  return typeof x === 'string';
}
