import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { KbundleError } from '../util/errors.js';
import type { BlobStore } from './blob-store.js';
import { byteOrder, canonicalJsonBytes } from './canonical-json.js';
import { hexOf } from './digest.js';
import { BundleExit } from './exit-codes.js';
import {
  Annotation,
  ArtifactType,
  EMPTY_JSON,
  MediaType,
  platformFor,
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  type OciLayout,
} from './oci.js';
import { reproTar, type ReproEntry } from './repro-tar.js';
import { signMinisign, type SecretKey } from './sign-index.js';

export interface WriteResult {
  /** Root digest: the signed bundle index blob. Equal roots ⇒ equal bundles. */
  digest: string;
  /** sha256 of the whole tar file. */
  fileDigest: string;
  size: number;
  file: string;
}

export interface AssembleInput {
  /** Bundle index annotations (identity + metadata); the source of `created` and the tar mtime. */
  annotations: Record<string, string>;
  /** Canonical-JSON bytes of every source and target manifest; order does not matter. */
  manifests: Buffer[];
  store: BlobStore;
  key: SecretKey;
}

/**
 * The deterministic half of writing: everything from here on is a pure
 * function of (annotations, set of manifests, blob bytes, key). writeBundle
 * and mergeBundles both end here, which is why merging shards gives the same
 * bytes as one build over all targets.
 */
export async function assembleBundle(input: AssembleInput, outFile: string): Promise<WriteResult> {
  const { store, annotations } = input;
  const createdIso = annotations[Annotation.created];
  const sde = Date.parse(createdIso) / 1000;
  if (!Number.isSafeInteger(sde) || sde < 0) throw new KbundleError(`bundle created annotation ${createdIso} is not whole seconds`, BundleExit.BadSpec);

  const byKey = new Map<string, { digest: string; desc: Descriptor }>();
  for (const bytes of input.manifests) {
    const m = JSON.parse(bytes.toString('utf8')) as ImageManifest;
    const d = store.putBytes(bytes);
    const a = m.annotations ?? {};
    const isTarget = m.artifactType === ArtifactType.target;
    const key = [a[Annotation.packageName], a[Annotation.packageVersion], isTarget ? '1' : '0', a[Annotation.kernelRelease] ?? '', a[Annotation.arch] ?? ''].join('\0');
    const desc: Descriptor = { mediaType: MediaType.manifest, digest: d.digest, size: d.size, artifactType: m.artifactType, annotations: a };
    if (isTarget) {
      const platform = platformFor(a[Annotation.arch]);
      if (platform) desc.platform = platform;
    }
    const prior = byKey.get(key);
    if (prior && prior.digest !== d.digest) {
      const what = isTarget
        ? `${a[Annotation.packageName]}/${a[Annotation.packageVersion]} for ${a[Annotation.kernelRelease]}/${a[Annotation.arch]}`
        : `source of ${a[Annotation.packageName]}/${a[Annotation.packageVersion]}`;
      throw new KbundleError(`two different builds of ${what} (${prior.digest} vs ${d.digest})`, BundleExit.MergeConflict);
    }
    byKey.set(key, { digest: d.digest, desc });
  }
  const manifests = [...byKey.entries()].sort(([a], [b]) => byteOrder(a, b)).map(([, v]) => v.desc);

  const bundleIndex: ImageIndex = {
    schemaVersion: 2,
    mediaType: MediaType.index,
    artifactType: ArtifactType.bundle,
    manifests,
    annotations,
  };
  const indexBytes = canonicalJsonBytes(bundleIndex);
  const indexD = store.putBytes(indexBytes);
  const indexDesc: Descriptor = { mediaType: MediaType.index, digest: indexD.digest, size: indexD.size, artifactType: ArtifactType.bundle };

  const name = annotations[Annotation.title];
  const version = annotations[Annotation.version];
  const trusted = `kbundle-index=${indexD.digest} name=${name} version=${version} created=${sde}`;
  const sigBytes = Buffer.from(signMinisign(indexBytes, input.key, trusted), 'utf8');
  const sigD = store.putBytes(sigBytes);
  const emptyD = store.putBytes(EMPTY_JSON);
  const sigManifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.manifest,
    artifactType: ArtifactType.signature,
    config: { mediaType: MediaType.empty, digest: emptyD.digest, size: emptyD.size },
    layers: [{ mediaType: MediaType.signature, digest: sigD.digest, size: sigD.size }],
    subject: indexDesc,
    annotations: { [Annotation.signerKeyId]: input.key.publicKey.keyId },
  };
  const sigManD = store.putBytes(canonicalJsonBytes(sigManifest));

  const topIndex: ImageIndex = {
    schemaVersion: 2,
    mediaType: MediaType.index,
    manifests: [
      { ...indexDesc, annotations: { [Annotation.refName]: annotations[Annotation.refName], [Annotation.created]: createdIso } },
      { mediaType: MediaType.manifest, digest: sigManD.digest, size: sigManD.size, artifactType: ArtifactType.signature },
    ],
  };
  const layout: OciLayout = { imageLayoutVersion: '1.0.0' };

  // Only blobs reachable from index.json go in: the reader rejects anything else.
  const reachable = new Set<string>([indexD.digest, sigD.digest, emptyD.digest, sigManD.digest]);
  for (const d of manifests) {
    reachable.add(d.digest);
    const m = JSON.parse(store.bytes(d.digest).toString('utf8')) as ImageManifest;
    reachable.add(m.config.digest);
    for (const l of m.layers) reachable.add(l.digest);
  }
  const entries: ReproEntry[] = [
    { type: 'dir', path: 'blobs' },
    { type: 'dir', path: 'blobs/sha256' },
    { type: 'file', path: 'index.json', data: canonicalJsonBytes(topIndex) },
    { type: 'file', path: 'oci-layout', data: canonicalJsonBytes(layout) },
  ];
  for (const digest of reachable) {
    const b = store.get(digest);
    const path = `blobs/sha256/${hexOf(digest)}`;
    entries.push('data' in b ? { type: 'file', path, data: b.data } : { type: 'file', path, file: b.file, size: b.size, expect: { digest: b.digest, size: b.size } });
  }
  const { fileDigest, size } = await writeAtomically(outFile, (sink) => pipeline(reproTar(entries, { mtime: sde }), sink));
  return { digest: indexD.digest, fileDigest, size, file: outFile };
}

/**
 * Writes through a temp file in the destination directory and renames it
 * into place after fsync, so `outFile` either keeps its old content or gets
 * the complete new bundle, never a partial one.
 */
export async function writeAtomically(
  outFile: string,
  produce: (sink: NodeJS.WritableStream) => Promise<void>,
): Promise<{ fileDigest: string; size: number }> {
  await mkdir(dirname(outFile), { recursive: true });
  const tmp = join(dirname(outFile), `.${basename(outFile)}.tmp-${randomBytes(6).toString('hex')}`);
  const hash = createHash('sha256');
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _e, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  try {
    const fileOut = createWriteStream(tmp, { flags: 'wx', mode: 0o644 });
    await Promise.all([produce(tap), pipeline(tap, fileOut)]);
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, outFile);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  return { fileDigest: 'sha256:' + hash.digest('hex'), size };
}
