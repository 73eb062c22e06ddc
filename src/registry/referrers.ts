/**
 * The signature as an OCI referrer of the bundle index (distribution-spec
 * "Listing Referrers" and "Referrers Tag Schema"). A registry with the
 * referrers API answers `GET /v2/<name>/referrers/<digest>` with an image
 * index of the manifests whose `subject` is that digest, and says so on a
 * manifest PUT with an `OCI-Subject` header. Without it (CNCF distribution
 * 2.8, Debian 12's docker-registry, answers 404), the client keeps that
 * index itself under the tag `sha256-<hex>` of the subject: fetch it (or
 * start empty), add the referrer's descriptor, PUT it back. Pure parts
 * here; the I/O is in push.ts / pull.ts.
 */
import { canonicalJsonBytes, MediaType, type Descriptor, type ImageIndex } from '../bundle/index.js';

/** `sha256:<hex>` → `sha256-<hex>` (the spec's tag schema: `<alg>-<ref>`). */
export function fallbackTag(digest: string): string {
  return digest.replace(':', '-');
}

/**
 * The fallback tag's index with `referrer` in it, or null when it is
 * already listed (nothing to PUT). Other referrers (another tool's
 * signatures, SBOMs) are kept as they are.
 */
export function withReferrer(existing: ImageIndex | null, referrer: Descriptor): Buffer | null {
  const manifests = existing?.manifests ?? [];
  if (manifests.some((d) => d.digest === referrer.digest)) return null;
  const index: ImageIndex = { ...(existing ?? { schemaVersion: 2, mediaType: MediaType.index }), schemaVersion: 2, mediaType: MediaType.index, manifests: [...manifests, referrer] };
  return canonicalJsonBytes(index);
}

/** Signature referrers of a referrers list, by artifact type. */
export function signatureReferrers(list: ImageIndex, artifactType: string): Descriptor[] {
  return (list.manifests ?? []).filter((d) => d.artifactType === artifactType && d.mediaType === MediaType.manifest);
}
