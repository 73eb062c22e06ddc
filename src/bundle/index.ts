export { BundleExit, type BundleExitCode } from './exit-codes.js';
export { canonicalJson, canonicalJsonBytes, byteOrder } from './canonical-json.js';
export { digestOf, digestFile, digestStream, descriptor, fileDescriptor, ociToIntegrity, VerifyingStream, type Digested } from './digest.js';
export { compressStream, ZstdDecoder, zstdParameters, DEFAULT_ZSTD_LEVEL, type ZstdParameters } from './zstd.js';
export { reproTar, packDirectory, collectTree, newestMtime, type ReproEntry } from './repro-tar.js';
export { safeExtract, type ExtractLimits, type ExtractedEntry } from './safe-extract.js';
export * from './oci.js';
export { generateKeys, parseSecretKey, loadSecretKey, parsePublicKey, loadPublicKey, formatPublicKey, signMinisign, verifyMinisign, type PublicKey, type SecretKey } from './sign-index.js';
export { writeBundle, detectCompression, type BundleSpec, type PackageSpec, type TargetSpec, type ModuleSpec, type WriteResult } from './writer.js';
export { mergeBundles, type MergeOptions } from './merge.js';
export { openBundle, verifyBundle, type OpenBundle, type OpenOptions, type VerifiedContents } from './open.js';
export { copyVerified } from './copy-verified.js';
export type { BundleIndex, PackageSummary, TargetSummary } from './verify.js';
// For the registry client (src/registry/), which rebuilds a bundle file from pulled blobs exactly as the writer lays it out.
export { BlobStore } from './blob-store.js';
export { BundleFile } from './bundle-file.js';
export { leadingEntries } from './assemble.js';
export { createdEpoch, topIndexFor, OCI_LAYOUT_BYTES } from './envelope.js';
export { hexOf } from './digest.js';
