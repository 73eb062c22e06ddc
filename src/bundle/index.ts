export { canonicalJson, canonicalJsonBytes, byteOrder } from './model/canonical-json.js';
export { digestOf, digestFile, digestStream, descriptor, fileDescriptor, ociToIntegrity, VerifyingStream, type Digested } from './model/digest.js';
export { compressStream, ZstdDecoder, zstdParameters, DEFAULT_ZSTD_LEVEL, type ZstdParameters } from './model/zstd.js';
export { reproTar, packDirectory, collectTree, newestMtime, type ReproEntry } from '../tar/repro-tar.js';
export { safeExtract, type ExtractLimits, type ExtractedEntry } from '../tar/safe-extract.js';
export * from './model/oci.js';
export { generateKeys, parseSecretKey, loadSecretKey, parsePublicKey, loadPublicKey, formatPublicKey, signMinisign, verifyMinisign, type PublicKey, type SecretKey } from '../sign/minisign.js';
export { writeBundle, detectCompression, type BundleSpec, type PackageSpec, type TargetSpec, type ModuleSpec, type WriteResult } from './write/writer.js';
export { mergeBundles, type MergeOptions } from './write/merge.js';
export { openBundle, verifyBundle, type OpenBundle, type OpenOptions, type VerifiedContents } from './read/open.js';
export { copyVerified } from './read/copy-verified.js';
export type { BundleIndex, PackageSummary, TargetSummary } from './read/verify.js';
// For the registry client (src/registry/), which rebuilds a bundle file from pulled blobs exactly as the writer lays it out.
export { BlobStore } from './write/blob-store.js';
export { BundleFile } from './write/bundle-file.js';
export { leadingEntries } from './write/assemble.js';
export { createdEpoch, topIndexFor, OCI_LAYOUT_BYTES } from './model/envelope.js';
export { hexOf } from './model/digest.js';
