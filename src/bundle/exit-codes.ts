/**
 * Exit codes for bundle and manifest failures. They start at 30 so they never
 * collide with DKMS's codes in src/util/exit-codes.ts; docs/bundle-format.md
 * lists them for users, keep the two in sync.
 */
export const BundleExit = {
  /** Signature missing, malformed, or does not verify. */
  BadSignature: 30,
  /** A blob's bytes do not match its digest or the size its descriptor declares. */
  DigestMismatch: 31,
  /** Not a tar, truncated, or an entry that is unsafe/unexpected (traversal, links, devices, duplicates). */
  UnsafeArchive: 32,
  /** Signature is well-formed but made by a key that is not trusted. */
  UntrustedKey: 33,
  /** kbundle.yaml does not parse or does not match schema/kbundle.schema.json. */
  BadManifest: 34,
  /** OCI JSON (oci-layout, index, manifests, configs) malformed, unknown media type, or a referenced blob missing. */
  BadLayout: 35,
  /** A kernel pattern in kbundle.yaml matches no installed kernel headers. */
  NoKernelMatch: 36,
  /** An entry, blob or decompressed stream exceeds its declared size or a configured limit. */
  LimitExceeded: 37,
  /** Shards given to merge disagree (different source, identity, or two builds of one target). */
  MergeConflict: 38,
  /** A key file cannot be read or is not in the expected format. */
  BadKey: 39,
  /** The bundle spec handed to the writer is inconsistent (duplicate target, bad name, unknown arch). */
  BadSpec: 40,
} as const;
export type BundleExitCode = (typeof BundleExit)[keyof typeof BundleExit];
