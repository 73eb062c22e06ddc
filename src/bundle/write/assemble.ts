import { KbundleError } from '../../util/errors.js';
import type { BlobStore } from './blob-store.js';
import { byteOrder, canonicalJsonBytes } from '../model/canonical-json.js';
import { BundleFile } from './bundle-file.js';
import { hexOf } from '../model/digest.js';
import { createdEpoch, OCI_LAYOUT_BYTES, signatureManifestFor, topIndexFor, trustedCommentFor } from '../model/envelope.js';
import { Annotation, ArtifactType, EMPTY_JSON, MediaType, platformFor, type Descriptor, type ImageIndex, type ImageManifest } from '../model/oci.js';
import type { ReproEntry } from '../../tar/repro-tar.js';
import { signMinisign, type SecretKey } from '../../sign/minisign.js';
import { ExitCode } from '../../util/exit-codes.js';

export interface WriteResult {
  /** Root digest: the signed bundle index blob. Equal roots ⇒ equal bundles. */
  digest: string;
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
  /**
   * The output, when the caller has already appended the leading entries
   * (leadingEntries) to it; otherwise one is created here. Either way it is
   * committed or aborted here.
   */
  file?: BundleFile;
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
  const sde = createdEpoch(createdIso);
  if (Number.isNaN(sde)) throw new KbundleError(`bundle created annotation ${createdIso} is not whole seconds`, ExitCode.BadSpec);

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
      throw new KbundleError(`two different builds of ${what} (${prior.digest} vs ${d.digest})`, ExitCode.MergeConflict);
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
  const sigBytes = Buffer.from(signMinisign(indexBytes, input.key, trustedCommentFor(indexD.digest, annotations)), 'utf8');
  const sigD = store.putBytes(sigBytes);
  const emptyD = store.putBytes(EMPTY_JSON);
  const sigManD = store.putBytes(canonicalJsonBytes(signatureManifestFor(indexD, sigD, emptyD, input.key.publicKey.keyId)));
  const topIndex = topIndexFor(indexD, annotations, sigManD);

  // Only blobs reachable from index.json go in: the reader rejects anything else.
  const reachable = new Set<string>([indexD.digest, sigD.digest, emptyD.digest, sigManD.digest]);
  for (const d of manifests) {
    reachable.add(d.digest);
    const m = JSON.parse(store.bytes(d.digest).toString('utf8')) as ImageManifest;
    reachable.add(m.config.digest);
    for (const l of m.layers) reachable.add(l.digest);
  }
  const leading = leadingEntries(manifests.map((d) => store.bytes(d.digest)), store);
  const inLeading = new Set(leading.map((e) => e.path));
  const rest: ReproEntry[] = [...reachable]
    .map((digest) => blobEntry(store, digest))
    .filter((e) => !inLeading.has(e.path))
    .sort((a, b) => byteOrder(a.path, b.path));
  rest.push({ type: 'file', path: 'index.json', data: canonicalJsonBytes(topIndex) }, { type: 'file', path: 'oci-layout', data: OCI_LAYOUT_BYTES });

  const file = input.file ?? (await BundleFile.create(outFile));
  try {
    if (input.file) {
      // What writeBundle appended early must be exactly what the order rule puts first.
      const want = leading.map((e) => e.path).join('\n');
      if (file.written.join('\n') !== want) throw new Error('internal: the bundle file was started with other entries than the manifests call for');
    } else {
      await file.append(leading, sde);
    }
    await file.append(rest, sde);
    const { size } = await file.commit();
    return { digest: indexD.digest, size, file: outFile };
  } catch (e) {
    await file.abort();
    throw e;
  }
}

/**
 * The first entries of every bundle tar: the two directories, then each
 * module blob once, by digest. Everything else follows by path (other
 * blobs by digest, then index.json, oci-layout). Modules lead because
 * their digests are known long before the source blob's (which needs the
 * whole source compressed) and they are most of the bytes: writeBundle
 * copies them into the file while the source is still being compressed.
 */
export function leadingEntries(manifests: Buffer[], store: BlobStore): ReproEntry[] {
  const modules = new Set<string>();
  for (const bytes of manifests) {
    const m = JSON.parse(bytes.toString('utf8')) as ImageManifest;
    for (const l of m.layers) if (l.mediaType === MediaType.module) modules.add(l.digest);
  }
  const blobs = [...modules].map((digest) => blobEntry(store, digest)).sort((a, b) => byteOrder(a.path, b.path));
  return [{ type: 'dir', path: 'blobs' }, { type: 'dir', path: 'blobs/sha256' }, ...blobs];
}

function blobEntry(store: BlobStore, digest: string): ReproEntry & { type: 'file' } {
  const b = store.get(digest);
  const path = `blobs/sha256/${hexOf(digest)}`;
  return 'data' in b ? { type: 'file', path, data: b.data } : { type: 'file', path, file: b.file, size: b.size, identity: b.identity };
}
