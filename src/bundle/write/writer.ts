import { machineMismatch } from '../../arch/machine-check.js';
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { KbundleError } from '../../util/errors.js';
import { assembleBundle, leadingEntries, type WriteResult } from './assemble.js';
import { BundleFile } from './bundle-file.js';
import { BlobStore } from './blob-store.js';
import { byteOrder, canonicalJsonBytes } from '../model/canonical-json.js';
import { Chunker } from './chunker.js';
import { hashFile, ociToIntegrity, type Digested } from '../model/digest.js';
import { isoOfEpoch } from '../model/envelope.js';
import { Annotation, ArtifactType, MediaType, metadataAnnotationKey, platformFor, type DkmsModuleRef, type ImageManifest, type PackageConfig, type TargetConfig, type TargetModule } from '../model/oci.js';
import { ZstdWorker } from './zstd-worker.js';
import { packDirectoryPieces } from '../../tar/repro-tar.js';
import type { SecretKey } from '../../sign/minisign.js';
import { zstdParameters } from '../model/zstd.js';
import { ExitCode } from '../../util/exit-codes.js';
import { type CompressionFormat } from '../../kmod/compression.js';

export type { WriteResult } from './assemble.js';

/** Everything a bundle is made of. The bytes written are a pure function of this value (order of lists aside). */
export interface BundleSpec {
  /** Bundle identity; the OCI ref name is `<name>:<version>`. */
  name: string;
  version: string;
  /** Seconds since the epoch: tar mtimes and the `created` annotation. */
  sourceDateEpoch: number;
  /** Free-form strings (kbundle.yaml `metadata`), stored as index annotations. */
  metadata?: Record<string, string>;
  /** zstd level for source blobs (default zstd.ts DEFAULT_ZSTD_LEVEL). */
  compressionLevel?: number;
  signingKey: SecretKey;
  packages: PackageSpec[];
}

/** One DKMS package (one dkms.conf): its source once, plus any number of built targets. */
export interface PackageSpec {
  /** PACKAGE_NAME / PACKAGE_VERSION from dkms.conf. */
  name: string;
  version: string;
  /** BUILT_MODULE_NAME / DEST_MODULE_LOCATION pairs, for `ls` and source installs. */
  modules: DkmsModuleRef[];
  /**
   * The source tree. `dir` is packed with packDirectory (mtime =
   * sourceDateEpoch, entries under `prefix`, default `<name>-<version>`);
   * `tar` is an already reproducible uncompressed tar stream.
   */
  source: { dir: string; prefix?: string } | { tar: Readable };
  targets: TargetSpec[];
}

/** One build of the package for one (kernel release, arch). */
export interface TargetSpec {
  kernelRelease: string;
  /** `uname -m` spelling: x86_64, aarch64, ... */
  arch: string;
  /** Full vermagic string of the target kernel. */
  vermagic: string;
  /** `sha256:<hex>` of the Module.symvers the build used. */
  symversDigest?: string;
  modules: ModuleSpec[];
}

/** The facts a builder already knows about a module; recorded in the bundle as the TargetModule fields of the same names. */
export interface ModuleSpec extends Pick<TargetModule, 'innerDigest' | 'srcversion' | 'depends' | 'versions' | 'sig' | 'machine'> {
  name: string;
  /** Path of the module as it will be installed: signed, possibly compressed (.ko, .ko.xz, .ko.zst, .ko.gz). */
  file: string;
  destLocation: string;
  /** Installed file name; default basename(file). */
  installName?: string;
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+~-]*$/;

export async function writeBundle(spec: BundleSpec, outFile: string): Promise<WriteResult> {
  checkSpec(spec);
  const out = resolve(outFile);
  const store = await BlobStore.create(dirname(out));
  const worker = ZstdWorker.start();
  let file: BundleFile | null = null;
  try {
    file = await BundleFile.create(out);
    const output = file;
    // Two lines of work at once: the worker thread compresses each package's
    // source (the longest step) while this thread hashes every module and
    // then copies them into the bundle file, which leads with them
    // (assemble.ts leadingEntries).
    const settled = await Promise.allSettled([
      (async () => {
        const ms: Buffer[] = [];
        for (const pkg of spec.packages) ms.push(await prepareSource(pkg, spec, store, worker));
        return ms;
      })(),
      (async () => {
        const ms: Buffer[] = [];
        for (const pkg of spec.packages) for (const t of pkg.targets) ms.push(await prepareTarget(pkg, t, store));
        await output.append(leadingEntries(ms, store), spec.sourceDateEpoch);
        return ms;
      })(),
    ]);
    // Both lines are settled before an error is reported: neither may still be writing.
    for (const r of settled) if (r.status === 'rejected') throw r.reason;
    const [sources, targets] = settled.map((r) => (r as PromiseFulfilledResult<Buffer[]>).value) as [Buffer[], Buffer[]];
    return await assembleBundle({ annotations: bundleAnnotations(spec), manifests: [...sources, ...targets], store, key: spec.signingKey, file }, out);
  } catch (e) {
    await file?.abort();
    throw e;
  } finally {
    await worker.close();
    await store.dispose();
  }
}

export function bundleAnnotations(spec: Pick<BundleSpec, 'name' | 'version' | 'sourceDateEpoch' | 'metadata'>): Record<string, string> {
  const a: Record<string, string> = {};
  for (const [k, v] of Object.entries(spec.metadata ?? {})) a[metadataAnnotationKey(k)] = v;
  a[Annotation.refName] = `${spec.name}:${spec.version}`;
  a[Annotation.title] = spec.name;
  a[Annotation.version] = spec.version;
  a[Annotation.created] = isoOfEpoch(spec.sourceDateEpoch);
  return a;
}

async function prepareSource(pkg: PackageSpec, spec: BundleSpec, store: BlobStore, worker: ZstdWorker): Promise<Buffer> {
  const params = zstdParameters(spec.compressionLevel);
  const pieces =
    'dir' in pkg.source
      ? packDirectoryPieces(pkg.source.dir, { mtime: spec.sourceDateEpoch, prefix: pkg.source.prefix ?? `${pkg.name}-${pkg.version}` })
      : (pkg.source.tar as AsyncIterable<Buffer>);
  // One pass over the plain tar: hashed here (recorded so the installer can
  // check what it unpacks and cap decompression), compressed into the store
  // by the worker.
  const blobFile = store.reserve();
  const zstd = worker.compressTo(blobFile, params.level);
  const plain = createHash('sha256');
  let plainSize = 0;
  const send = (chunk: Buffer): Promise<void> => {
    plain.update(chunk);
    plainSize += chunk.length;
    return zstd.write(chunk);
  };
  const chunker = new Chunker();
  for await (const piece of pieces) for (const chunk of chunker.push(piece)) await send(chunk);
  const last = chunker.flush();
  if (last) await send(last);
  const zst = await zstd.end();
  store.adopt(blobFile, zst);
  const src: Digested = { digest: 'sha256:' + plain.digest('hex'), size: plainSize };
  const config: PackageConfig = {
    schemaVersion: 1,
    name: pkg.name,
    version: pkg.version,
    modules: [...pkg.modules].sort((a, b) => byteOrder(a.name, b.name)),
    source: src,
    compression: params,
  };
  const layers: ImageManifest['layers'] = [
    {
      mediaType: MediaType.source,
      ...zst,
      annotations: {
        [Annotation.title]: `${pkg.name}-${pkg.version}.tar.zst`,
        [Annotation.uncompressedDigest]: src.digest,
        [Annotation.uncompressedSize]: String(src.size),
      },
    },
  ];
  return packageManifest(store, ArtifactType.source, MediaType.packageConfig, config, layers, { [Annotation.packageName]: pkg.name, [Annotation.packageVersion]: pkg.version });
}

async function prepareTarget(pkg: PackageSpec, t: TargetSpec, store: BlobStore): Promise<Buffer> {
  const mods: TargetModule[] = [];
  for (const m of [...t.modules].sort((a, b) => byteOrder(a.name, b.name))) {
    const d = await hashFile(m.file);
    store.adopt(m.file, d, d.identity);
    const file = m.installName ?? basename(m.file);
    mods.push({
      name: m.name,
      file,
      destLocation: m.destLocation,
      digest: d.digest,
      size: d.size,
      // The same sha256 in SRI form: the installer checks module bytes with
      // ssri against it. A second (sha512) hash cost a full extra read of
      // every module at pack time and was checked by nothing.
      integrity: ociToIntegrity(d.digest),
      compression: await detectCompression(m.file),
      innerDigest: m.innerDigest,
      srcversion: m.srcversion,
      depends: m.depends,
      versions: m.versions,
      sig: m.sig,
      machine: m.machine,
    });
  }
  const config: TargetConfig = {
    schemaVersion: 1,
    package: { name: pkg.name, version: pkg.version },
    kernelRelease: t.kernelRelease,
    arch: t.arch,
    vermagic: t.vermagic,
    symversDigest: t.symversDigest,
    modules: mods,
  };
  const layers: ImageManifest['layers'] = mods.map((m) => ({
    mediaType: MediaType.module,
    digest: m.digest,
    size: m.size,
    annotations: { [Annotation.title]: m.file, [Annotation.moduleName]: m.name },
  }));
  return packageManifest(store, ArtifactType.target, MediaType.targetConfig, config, layers, {
    [Annotation.packageName]: pkg.name,
    [Annotation.packageVersion]: pkg.version,
    [Annotation.kernelRelease]: t.kernelRelease,
    [Annotation.arch]: t.arch,
  });
}

/** The image manifest of a source or a target: its config stored as a blob, then the layers it lists. */
function packageManifest(
  store: BlobStore,
  artifactType: ImageManifest['artifactType'],
  configMediaType: string,
  config: PackageConfig | TargetConfig,
  layers: ImageManifest['layers'],
  annotations: Record<string, string>,
): Buffer {
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.manifest,
    artifactType,
    config: { mediaType: configMediaType, ...store.putBytes(canonicalJsonBytes(config)) },
    layers,
    annotations,
  };
  return canonicalJsonBytes(manifest);
}

const MAGIC: [CompressionFormat, Buffer][] = [
  ['none', Buffer.from([0x7f, 0x45, 0x4c, 0x46])],
  ['xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])],
  ['zstd', Buffer.from([0x28, 0xb5, 0x2f, 0xfd])],
  ['gzip', Buffer.from([0x1f, 0x8b])],
];

/** Classifies a module by its magic bytes; anything else is not a kernel module and is refused. */
export async function detectCompression(file: string): Promise<CompressionFormat> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(6);
    const { bytesRead } = await fh.read(head, 0, 6, 0);
    for (const [kind, magic] of MAGIC) if (bytesRead >= magic.length && head.subarray(0, magic.length).equals(magic)) return kind;
  } finally {
    await fh.close();
  }
  throw new KbundleError(`${file}: not an ELF module nor xz/zstd/gzip-compressed one`, ExitCode.BadSpec);
}

function checkSpec(spec: BundleSpec): void {
  const bad = (m: string) => new KbundleError(`bundle spec: ${m}`, ExitCode.BadSpec);
  for (const [what, v] of [
    ['name', spec.name],
    ['version', spec.version],
  ] as const) {
    if (!NAME_RE.test(v)) throw bad(`${what} ${JSON.stringify(v)} must match ${NAME_RE}`);
  }
  if (!Number.isSafeInteger(spec.sourceDateEpoch) || spec.sourceDateEpoch < 0) throw bad(`sourceDateEpoch must be a non-negative integer, got ${spec.sourceDateEpoch}`);
  for (const [k, v] of Object.entries(spec.metadata ?? {})) {
    if (typeof v !== 'string') throw bad(`metadata.${k} must be a string`);
  }
  if (spec.packages.length === 0) throw bad('no packages');
  const pkgs = new Set<string>();
  for (const p of spec.packages) {
    if (!NAME_RE.test(p.name) || !NAME_RE.test(p.version)) throw bad(`package ${JSON.stringify(p.name)} ${JSON.stringify(p.version)}: name/version must match ${NAME_RE}`);
    if (pkgs.has(p.name)) throw bad(`package ${p.name} listed twice`);
    pkgs.add(p.name);
    const targets = new Set<string>();
    for (const t of p.targets) {
      if (!t.kernelRelease || /[\s/]/.test(t.kernelRelease)) throw bad(`${p.name}: bad kernel release ${JSON.stringify(t.kernelRelease)}`);
      if (!platformFor(t.arch)) throw bad(`${p.name}/${t.kernelRelease}: unknown arch ${JSON.stringify(t.arch)}`);
      if (!t.vermagic) throw bad(`${p.name}/${t.kernelRelease}/${t.arch}: vermagic is empty`);
      const key = `${t.kernelRelease}/${t.arch}`;
      if (targets.has(key)) throw bad(`${p.name}: target ${key} listed twice`);
      targets.add(key);
      if (t.modules.length === 0) throw bad(`${p.name}/${key}: no modules`);
      const names = new Set<string>();
      for (const m of t.modules) {
        if (names.has(m.name)) throw bad(`${p.name}/${key}: module ${m.name} listed twice`);
        names.add(m.name);
        const file = m.installName ?? basename(m.file);
        if (!/^[A-Za-z0-9_.+-]+$/.test(file)) throw bad(`${p.name}/${key}: module file name ${JSON.stringify(file)} is not a plain file name`);
        const wrong = machineMismatch(t.arch, m.machine);
        if (wrong) throw bad(`${p.name}/${key}: module ${m.name} ${wrong}`);
        if (!m.destLocation.startsWith('/') || m.destLocation.split('/').includes('..')) throw bad(`${p.name}/${key}: module ${m.name} destLocation ${JSON.stringify(m.destLocation)} must be absolute inside the module tree`);
      }
    }
  }
}
