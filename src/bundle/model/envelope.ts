/**
 * The bundle's envelope: the documents around the signed bundle index that
 * the signature cannot cover (index.json, the signature manifest,
 * oci-layout, the minisign trusted comment). Each is a pure function of the
 * bundle index and the signature, built here for the writer (assemble.ts)
 * and rebuilt by the verifier (verify.ts), which refuses a bundle whose
 * envelope is not byte for byte what these functions give: otherwise
 * index.json could carry values (ref name, created date, extra
 * annotations) nobody signed, and a stored copy would keep them.
 */
import { canonicalJsonBytes } from './canonical-json.js';
import type { Digested } from './digest.js';
import { Annotation, ArtifactType, MediaType, type Descriptor, type ImageIndex, type ImageManifest, type OciLayout } from './oci.js';

const layout: OciLayout = { imageLayoutVersion: '1.0.0' };
export const OCI_LAYOUT_BYTES = canonicalJsonBytes(layout);

/** How index.json and the signature manifest point at the bundle index. */
export function bundleIndexDescriptor(index: Digested): Descriptor {
  return { mediaType: MediaType.index, digest: index.digest, size: index.size, artifactType: ArtifactType.bundle };
}

/** SOURCE_DATE_EPOCH from the `created` annotation, or NaN when it is not whole seconds since the epoch. */
export function createdEpoch(createdIso: string | undefined): number {
  const sde = Date.parse(createdIso ?? '') / 1000;
  return Number.isSafeInteger(sde) && sde >= 0 ? sde : NaN;
}

/** The `created` annotation for a SOURCE_DATE_EPOCH; the verifier accepts no other spelling of the same time. */
export function isoOfEpoch(sde: number): string {
  return new Date(sde * 1000).toISOString().replace('.000Z', 'Z');
}

/**
 * Signed with the index, so `minisign -V` users see the identity; it names
 * the index digest because a signature over some other index must not pass
 * for this one.
 */
export function trustedCommentFor(root: string, annotations: Record<string, string>): string {
  return `kbundle-index=${root} name=${annotations[Annotation.title]} version=${annotations[Annotation.version]} created=${createdEpoch(annotations[Annotation.created])}`;
}

export function signatureManifestFor(index: Digested, signature: Digested, emptyConfig: Digested, keyId: string): ImageManifest {
  return {
    schemaVersion: 2,
    mediaType: MediaType.manifest,
    artifactType: ArtifactType.signature,
    config: { mediaType: MediaType.empty, digest: emptyConfig.digest, size: emptyConfig.size },
    layers: [{ mediaType: MediaType.signature, digest: signature.digest, size: signature.size }],
    subject: bundleIndexDescriptor(index),
    annotations: { [Annotation.signerKeyId]: keyId },
  };
}

/** index.json: its two annotations are copies of the signed index's, so tools that read only index.json see signed values. */
export function topIndexFor(index: Digested, annotations: Record<string, string>, signatureManifest: Digested): ImageIndex {
  return {
    schemaVersion: 2,
    mediaType: MediaType.index,
    manifests: [
      { ...bundleIndexDescriptor(index), annotations: { [Annotation.refName]: annotations[Annotation.refName], [Annotation.created]: annotations[Annotation.created] } },
      { mediaType: MediaType.manifest, digest: signatureManifest.digest, size: signatureManifest.size, artifactType: ArtifactType.signature },
    ],
  };
}

/**
 * Where two JSON documents first differ, as a path into `actual`
 * (`manifests[0].annotations["org.opencontainers.image.ref.name"]`) with
 * both values, or null when they are equal. Only plain JSON values.
 */
export function firstDifference(expected: unknown, actual: unknown, path = ''): { path: string; expected: unknown; actual: unknown } | null {
  const here = { path: path || '(the whole document)', expected, actual };
  if (Array.isArray(expected) || Array.isArray(actual)) {
    if (!Array.isArray(expected) || !Array.isArray(actual)) return here;
    for (let i = 0; i < Math.max(expected.length, actual.length); i++) {
      const d = firstDifference(expected[i], actual[i], `${path}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  if (isObject(expected) && isObject(actual)) {
    const keys = [...new Set([...Object.keys(expected), ...Object.keys(actual)])].sort();
    for (const k of keys) {
      const d = firstDifference(expected[k], actual[k], `${path}${/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? `${path ? '.' : ''}${k}` : `[${JSON.stringify(k)}]`}`);
      if (d) return d;
    }
    return null;
  }
  return expected === actual ? null : here;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
