/**
 * What a bundle puts in a registry: the OCI graph its index.json points at,
 * with the signature manifest as a referrer of the bundle index (its
 * `subject`), not a tag. Pure: built from JSON bytes the caller has already
 * verified (openBundle) or fetched and checked against their digests.
 */
import { KbundleError } from '../util/errors.js';
import { ArtifactType, MediaType, type Descriptor, type ImageIndex, type ImageManifest } from '../bundle/index.js';
import { ExitCode } from '../util/exit-codes.js';

export interface JsonDoc {
  digest: string;
  size: number;
  mediaType: string;
  bytes: Buffer;
}

export interface GraphBlob {
  digest: string;
  size: number;
  mediaType: string;
}

export interface BundleGraph {
  /** The signed bundle index (the root digest names the bundle). */
  index: JsonDoc;
  /** Source and target manifests, in bundle index order. */
  manifests: JsonDoc[];
  /** The signature manifest (subject = the bundle index). */
  signature: JsonDoc;
  /** Every config and layer blob once, in first-reference order. */
  blobs: GraphBlob[];
}

export function parseJson<T>(bytes: Buffer, what: string, code: number = ExitCode.RegistryProtocol): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch (e) {
    throw new KbundleError(`${what} is not JSON (${(e as Error).message})`, code);
  }
}

/** Configs and layers of the given manifests (the signature's last), each digest once. */
export function blobsOf(manifests: Buffer[]): GraphBlob[] {
  const seen = new Map<string, GraphBlob>();
  for (const bytes of manifests) {
    const m = parseJson<ImageManifest>(bytes, 'manifest', ExitCode.BadLayout);
    for (const d of [m.config, ...m.layers]) if (!seen.has(d.digest)) seen.set(d.digest, { digest: d.digest, size: d.size, mediaType: d.mediaType });
  }
  return [...seen.values()];
}

/** The descriptor a referrers list (API answer or fallback tag index) carries for the signature manifest. */
export function referrerDescriptor(sig: JsonDoc): Descriptor {
  const m = parseJson<ImageManifest>(sig.bytes, 'signature manifest', ExitCode.BadLayout);
  return { mediaType: MediaType.manifest, digest: sig.digest, size: sig.size, artifactType: m.artifactType, ...(m.annotations ? { annotations: m.annotations } : {}) };
}

/** A bundle index, or why the document is not one. */
export function asBundleIndex(bytes: Buffer, what: string): ImageIndex {
  const j = parseJson<ImageIndex>(bytes, what);
  if (j.mediaType !== MediaType.index || j.artifactType !== ArtifactType.bundle || !Array.isArray(j.manifests)) {
    throw new KbundleError(
      `${what} is not a kbundle bundle (mediaType ${j.mediaType ?? 'none'}, artifactType ${j.artifactType ?? 'none'}; a bundle is an ${MediaType.index} with artifactType ${ArtifactType.bundle})`,
      ExitCode.RegistryNotABundle,
    );
  }
  return j;
}
