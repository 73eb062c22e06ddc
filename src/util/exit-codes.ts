/**
 * kbundle's exit codes, all in one table. 1-21, 77 and 101 mean what they
 * mean for DKMS 3.x (the header comment of dkms.in; docs/dkms-compat.md), so
 * scripts written for dkms keep working; 30-46 are kbundle's own for bundles,
 * manifests, the tree lock and recovery; 50-51 for the drop-in commands.
 * docs/exit-codes.md lists them for users; keep the two in sync.
 */
export const ExitCode = {
  Ok: 0,
  General: 1,
  Usage: 2,
  NotInTree: 3,
  BadAction: 4,
  AllNotAllowed: 5,
  InstallFailed: 6,
  BuiltModuleMissing: 7,
  BadConf: 8,
  NoConf: 9,
  MakeFailed: 10,
  AutoinstallFailed: 11,
  NoArch: 12,
  BuildDepends: 13,
  CdFailed: 15,
  EmptyKernel: 16,
  NoHeaders: 21,
  Excluded: 77,
  PreInstallFailed: 101,
  // --- bundles, manifests, the tree lock, recovery (30-46) ---
  /** Signature missing, malformed, does not verify, or its trusted comment or unsigned lines are not what kbundle writes for this index. */
  BadSignature: 30,
  /** A blob's bytes do not match its digest or the size its descriptor declares. */
  DigestMismatch: 31,
  /** Not a tar, truncated, or an entry that is unsafe/unexpected (traversal, links, devices, duplicates). */
  UnsafeArchive: 32,
  /** Signature is well-formed but made by a key that is not trusted. */
  UntrustedKey: 33,
  /** kbundle.yaml does not parse or does not match schema/kbundle.schema.json. */
  BadManifest: 34,
  /** OCI JSON (oci-layout, index, manifests, configs) malformed, unknown media type, a referenced blob missing, or index.json / the signature manifest / oci-layout not exactly what the signed index determines. */
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
  /** bundle install: no build fits the target kernel and a source build is impossible (nearest candidates are listed). */
  NoMatch: 41,
  /** bundle install: the bundle is older than the one installed for the same module (anti-rollback; --allow-downgrade). */
  Downgrade: 42,
  /** bundle install --require-trusted-signer: the modules' signer is not known to be trusted by the target kernel. */
  UntrustedSigner: 43,
  /** bundle install: a module file would replace one that another DKMS module (or another package of the bundle) installed. */
  FileConflict: 44,
  /** Any mutating command: another kbundle command holds the DKMS tree lock past --lock-timeout. */
  Locked: 45,
  /** An interrupted command could be neither finished nor rolled back (the journal is kept). */
  RecoveryFailed: 46,
  // --- the drop-in commands (50-51; docs/dkms-dropin.md) ---
  /** dropin: Debian's dkms package is not installed in the root, so there is nothing to take over. */
  NoDkmsPackage: 50,
  /** dropin: a path holds a file that is neither Debian's (diverted) nor kbundle's, or dpkg-divert refused. */
  DiversionConflict: 51,
  // Package builders (src/packages): mkdeb, mkdsc, mkbmdeb, mkrpm, mkkmp, mkdriverdisk.
  /** A tool the format needs (dpkg-deb, rpmbuild, createrepo_c, xorriso, ...) is not installed. */
  MissingTool: 60,
  /** The module/version is not in the DKMS tree, or has no source. */
  UnknownModule: 61,
  /** A requested kernel has no build of the module (DKMS tree) or no binary in the bundle. */
  NotBuilt: 62,
  /** A format tool (dpkg-buildpackage, dpkg-source, rpmbuild, createrepo_c, xorriso, tar) failed. */
  ToolFailed: 63,
  /** An output exists already (use --force), or the output path is unusable. */
  OutputExists: 64,
  /** Bad option values (unknown --distro, --format, names that cannot become package names). */
  BadOption: 65,
  // Cross-arch builds (src/arch) and `headers fetch` (src/headers).
  /** A kernel's headers are for an arch the manifest does not list, or a listed arch has no kernel. */
  ArchMismatch: 80,
  /** The cross compiler or binutils for an arch are not installed. */
  NoToolchain: 81,
  /** An arch kbundle cannot map to a kbuild ARCH / ELF machine / Debian arch. */
  UnknownArch: 82,
  /** `headers fetch`: apt could not find or download a package. */
  HeadersFetchFailed: 83,
  /** `headers fetch`: the unpacked tree is not a usable kernel build directory. */
  BadHeaders: 84,
  // Registry client (src/registry): bundle push / bundle pull.
  /** The registry (or its token server) refused the credentials: wrong user/password, no credentials where some are required. */
  RegistryAuthFailed: 90,
  /** Repository, tag, manifest or blob unknown to the registry (404 / NAME_UNKNOWN / MANIFEST_UNKNOWN / BLOB_UNKNOWN). */
  RegistryNotFound: 91,
  /** The registry answered outside the distribution spec: unexpected status, missing Location, malformed JSON or headers. */
  RegistryProtocol: 92,
  /** Bytes the registry served (or the digest it reported) do not match the digest asked for. */
  RegistryDigestMismatch: 93,
  /** Connection refused, DNS failure, TLS failure, timeout, connection reset. */
  RegistryNetwork: 94,
  /** REF does not parse (registry host, repository name, tag or digest). */
  RegistryBadReference: 95,
  /** Authenticated, but not allowed (403 / DENIED), e.g. push with read-only credentials. */
  RegistryDenied: 96,
  /** What REF names is not a kbundle bundle (other artifact type), or the bundle's signature referrer is missing. */
  RegistryNotABundle: 97,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];
