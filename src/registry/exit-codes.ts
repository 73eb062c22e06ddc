/**
 * Exit codes of `kbundle bundle push` / `bundle pull` (the OCI registry
 * client). 90-99 is this folder's range; docs/exit-codes.md lists them for
 * users ("Registry" section), keep the two in sync. Failures of the bundle
 * itself (signature, digests of the local file, layout) keep their 30-46
 * codes from src/bundle/exit-codes.ts.
 */
export const RegistryExit = {
  /** The registry (or its token server) refused the credentials: wrong user/password, no credentials where some are required. */
  AuthFailed: 90,
  /** Repository, tag, manifest or blob unknown to the registry (404 / NAME_UNKNOWN / MANIFEST_UNKNOWN / BLOB_UNKNOWN). */
  NotFound: 91,
  /** The registry answered outside the distribution spec: unexpected status, missing Location, malformed JSON or headers. */
  Protocol: 92,
  /** Bytes the registry served (or the digest it reported) do not match the digest asked for. */
  DigestMismatch: 93,
  /** Connection refused, DNS failure, TLS failure, timeout, connection reset. */
  Network: 94,
  /** REF does not parse (registry host, repository name, tag or digest). */
  BadReference: 95,
  /** Authenticated, but not allowed (403 / DENIED), e.g. push with read-only credentials. */
  Denied: 96,
  /** What REF names is not a kbundle bundle (other artifact type), or the bundle's signature referrer is missing. */
  NotABundle: 97,
} as const;
export type RegistryExitCode = (typeof RegistryExit)[keyof typeof RegistryExit];
