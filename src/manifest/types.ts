/** kbundle.yaml after validation, with every path made absolute. schema/kbundle.schema.json is the source of truth. */
export interface Manifest {
  /** Absolute path of the manifest file. */
  file: string;
  apiVersion: 'kbundle/v1';
  name?: string;
  version?: string;
  /** Module source directories (each holds a dkms.conf), absolute. */
  sources: string[];
  kernels: KernelSelector[];
  /** `uname -m` names; default ['x86_64']. */
  arches: string[];
  signing?: { moduleKey: string; moduleCert: string; hash: 'sha256' | 'sha384' | 'sha512' | 'sha224' | 'sha1' };
  /** Ed25519 PKCS#8 PEM secret key for the bundle signature, absolute. */
  bundleKey?: string;
  compression: { level: number };
  sourceDateEpoch?: number;
  /** Free-form metadata; YAML numbers/booleans become strings (annotations are strings). */
  metadata: Record<string, string>;
  output?: string;
}

export interface KernelSelector {
  /** A release (`6.1.0-56-amd64`) or glob (`6.1.0-*-amd64`). */
  pattern: string;
  /** Explicit headers (build) directory, absolute; only with an explicit release. */
  headers?: string;
}

/** The raw YAML shape the schema validates, before paths are resolved. */
export interface RawManifest {
  apiVersion: 'kbundle/v1';
  name?: string;
  version?: string;
  source?: string;
  sources?: string[];
  kernels: (string | { release: string; headers?: string })[];
  arches?: string[];
  signing?: { moduleKey: string; moduleCert: string; hash?: 'sha256' | 'sha384' | 'sha512' | 'sha224' | 'sha1' };
  bundleKey?: string;
  compression?: { level?: number };
  sourceDateEpoch?: number;
  metadata?: Record<string, string | number | boolean>;
  output?: string;
}

export interface ResolvedKernel {
  release: string;
  /** Kernel build directory (headers). */
  headers: string;
}
