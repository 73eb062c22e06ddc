/**
 * On-disk types of the bundle: the OCI image-layout pieces we write and the
 * two kbundle config documents. Every JSON document here is stored in
 * canonical JSON (canonical-json.ts), so its digest is a function of content.
 */

import type { CompressionFormat } from '../../kmod/compression.js';

export const MediaType = {
  layoutHeader: 'application/vnd.oci.layout.header.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  empty: 'application/vnd.oci.empty.v1+json',
  /** Package config: name, version, dkms module list, source tar digest, zstd parameters. */
  packageConfig: 'application/vnd.kbundle.package.v1+json',
  /** Source tree of one DKMS package: reproducible tar (repro-tar.ts), zstd-compressed (zstd.ts). */
  source: 'application/vnd.kbundle.source.v1.tar+zstd',
  /** Target config: one package built for one (kernel release, arch). */
  targetConfig: 'application/vnd.kbundle.config.v1+json',
  /** One kernel module exactly as shipped: signed .ko, or .ko.xz/.ko.zst/.ko.gz. */
  module: 'application/vnd.kbundle.module.v1',
  /** minisign signature file over the bundle index blob. */
  signature: 'application/vnd.kbundle.signature.v1.minisig',
} as const;

export const ArtifactType = {
  bundle: 'application/vnd.kbundle.bundle.v1',
  source: 'application/vnd.kbundle.source.v1',
  target: 'application/vnd.kbundle.target.v1',
  signature: 'application/vnd.kbundle.signature.v1',
} as const;

export const Annotation = {
  refName: 'org.opencontainers.image.ref.name',
  created: 'org.opencontainers.image.created',
  title: 'org.opencontainers.image.title',
  version: 'org.opencontainers.image.version',
  packageName: 'org.kbundle.package.name',
  packageVersion: 'org.kbundle.package.version',
  kernelRelease: 'org.kbundle.kernel.release',
  arch: 'org.kbundle.arch',
  moduleName: 'org.kbundle.module.name',
  signerKeyId: 'org.kbundle.signer.keyid',
  uncompressedDigest: 'org.kbundle.uncompressed.digest',
  uncompressedSize: 'org.kbundle.uncompressed.size',
  /** Prefix for free-form manifest metadata; standard OCI keys are used where one exists (metadataAnnotationKey). */
  metadataPrefix: 'org.kbundle.metadata.',
} as const;

/** The OCI empty descriptor's content `{}` (image-spec manifest.md). */
export const EMPTY_JSON = Buffer.from('{}');

export interface Descriptor {
  mediaType: string;
  /** `sha256:<64 lowercase hex>` */
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  artifactType?: string;
  platform?: Platform;
}

export interface Platform {
  /** Go GOARCH value (amd64, arm64, ...). */
  architecture: string;
  os: 'linux';
  variant?: string;
}

export interface OciLayout {
  imageLayoutVersion: '1.0.0';
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType: typeof MediaType.index;
  artifactType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType: typeof MediaType.manifest;
  artifactType: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface DkmsModuleRef {
  /** BUILT_MODULE_NAME */
  name: string;
  /** DEST_MODULE_LOCATION, e.g. `/updates/dkms` or `/kernel/drivers/net`. */
  destLocation: string;
}

/** Config blob of a source manifest. */
export interface PackageConfig {
  schemaVersion: 1;
  name: string;
  version: string;
  modules: DkmsModuleRef[];
  /** The uncompressed source tar: lets an installer check what it unpacks and caps decompression. */
  source: { digest: string; size: number };
  compression: import('./zstd.js').ZstdParameters;
}

export interface TargetModule {
  name: string;
  /** File name as installed, e.g. `hello.ko.xz`. */
  file: string;
  destLocation: string;
  /** Digest of the bytes as shipped (the layer blob). */
  digest: string;
  size: number;
  /** ssri integrity (`sha256-<base64>`) of the same bytes; the installer checks modules with it. */
  integrity: string;
  compression: CompressionFormat;
  /** Digest of the uncompressed, signature-stripped ELF, when the builder supplies it. */
  innerDigest?: string;
  srcversion?: string;
  depends?: string[];
  /** `__versions` entries: [symbol, crc as `0x%08x`]. */
  versions?: [string, string][];
  sig?: { signer?: string; keyId?: string; hash?: string };
  /** ELF e_machine of the module (62 x86-64, 183 AArch64); the installer never picks a binary for another machine. */
  machine?: number;
}

/** Config blob of a target manifest: one package for one (kernel release, arch). */
export interface TargetConfig {
  schemaVersion: 1;
  package: { name: string; version: string };
  kernelRelease: string;
  /** Kernel arch name as `uname -m` prints it (x86_64, aarch64, ...). */
  arch: string;
  /** Full vermagic string of the kernel the modules were built against. */
  vermagic: string;
  /** Digest of the build-time Module.symvers. */
  symversDigest?: string;
  modules: TargetModule[];
}

const GOARCH: Record<string, { architecture: string; variant?: string }> = {
  x86_64: { architecture: 'amd64' },
  i386: { architecture: '386' },
  i686: { architecture: '386' },
  aarch64: { architecture: 'arm64', variant: 'v8' },
  arm64: { architecture: 'arm64', variant: 'v8' },
  armv7l: { architecture: 'arm', variant: 'v7' },
  ppc64le: { architecture: 'ppc64le' },
  s390x: { architecture: 's390x' },
  riscv64: { architecture: 'riscv64' },
  loongarch64: { architecture: 'loong64' },
};

/** OCI platform for a kernel arch (`uname -m`), or null when OCI has no name for it. */
export function platformFor(arch: string): Platform | null {
  const g = GOARCH[arch];
  return g ? { architecture: g.architecture, os: 'linux', ...(g.variant ? { variant: g.variant } : {}) } : null;
}

export const KNOWN_ARCHES = Object.keys(GOARCH);

const OCI_METADATA_KEYS: Record<string, string> = {
  vendor: 'org.opencontainers.image.vendor',
  description: 'org.opencontainers.image.description',
  license: 'org.opencontainers.image.licenses',
  licenses: 'org.opencontainers.image.licenses',
  url: 'org.opencontainers.image.url',
  authors: 'org.opencontainers.image.authors',
  documentation: 'org.opencontainers.image.documentation',
};

/** Where a manifest metadata key lives among the bundle index annotations. */
export function metadataAnnotationKey(key: string): string {
  return OCI_METADATA_KEYS[key] ?? Annotation.metadataPrefix + key;
}

/** Inverse of metadataAnnotationKey over a whole annotation map. */
export function metadataFromAnnotations(annotations: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  const byOci = new Map<string, string>();
  for (const [k, v] of Object.entries(OCI_METADATA_KEYS)) if (!byOci.has(v)) byOci.set(v, k);
  for (const [k, v] of Object.entries(annotations)) {
    if (k.startsWith(Annotation.metadataPrefix)) out[k.slice(Annotation.metadataPrefix.length)] = v;
    else if (byOci.has(k)) out[byOci.get(k)!] = v;
  }
  return out;
}
