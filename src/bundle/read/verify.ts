import { KbundleError } from '../../util/errors.js';
import { DIGEST_RE, type Digested } from '../model/digest.js';
import {
  Annotation,
  ArtifactType,
  EMPTY_JSON,
  MediaType,
  metadataFromAnnotations,
  type Descriptor,
  type ImageIndex,
  type ImageManifest,
  type PackageConfig,
  type TargetConfig,
  type TargetModule,
} from '../model/oci.js';
import type { ScannedArchive } from './scan.js';
import { describeMinisign, kbundleSignatureText, verifyMinisign, type PublicKey } from '../../sign/minisign.js';
import { canonicalJsonBytes } from '../model/canonical-json.js';
import { createdEpoch, firstDifference, isoOfEpoch, OCI_LAYOUT_BYTES, signatureManifestFor, topIndexFor, trustedCommentFor } from '../model/envelope.js';
import { ExitCode } from '../../util/exit-codes.js';

/** What `kbundle bundle ls` shows; built only from verified, signed content. */
export interface BundleIndex {
  file: string;
  /** Digest of the signed bundle index: the bundle's identity. */
  rootDigest: string;
  name: string;
  version: string;
  /** ISO time, = SOURCE_DATE_EPOCH of the build. */
  created: string;
  metadata: Record<string, string>;
  signer: { keyId: string; trustedComment: string };
  packages: PackageSummary[];
  kernels: string[];
  arches: string[];
  /** Sum of all blob sizes (what the bundle carries, without tar overhead). */
  blobBytes: number;
}

export interface PackageSummary {
  name: string;
  version: string;
  manifestDigest: string;
  config: PackageConfig;
  /** The compressed source layer. */
  source: Descriptor;
  targets: TargetSummary[];
}

export interface TargetSummary {
  kernelRelease: string;
  arch: string;
  vermagic: string;
  manifestDigest: string;
  config: TargetConfig;
  modules: (TargetModule & { layer: Descriptor })[];
}

export interface VerifyOptions {
  trustedKeys: PublicKey[];
  /**
   * Skip the signature check (digests, layout and the envelope's agreement
   * with the bundle index are still checked: the bundle is consistent, but
   * anyone could have made it). Only for looking at a bundle whose key one
   * does not hold; callers must say so.
   */
  skipSignature?: boolean;
}

/**
 * Validates the OCI graph of a scanned bundle: signature first (over the
 * bundle index bytes, by a trusted key), then that everything the
 * signature cannot cover is exactly what the bundle index and signature
 * determine (checkEnvelope), then every descriptor below it (known media
 * type, blob present, size equal), then that no blob is left over. Each
 * failure class has its own exit code (exit-codes.ts).
 */
export function verifyScanned(scan: ScannedArchive, opts: VerifyOptions): BundleIndex {
  const file = scan.file;
  const layoutErr = (msg: string) => new KbundleError(`${file}: ${msg}`, ExitCode.BadLayout);
  const reachable = new Set<string>();

  const json = <T>(bytes: Buffer, what: string): T => {
    try {
      return JSON.parse(bytes.toString('utf8')) as T;
    } catch (e) {
      throw layoutErr(`${what} is not valid JSON (${(e as Error).message})`);
    }
  };
  const blobBytes = (d: Descriptor, what: string): Buffer => {
    checkDescriptor(d, what, layoutErr);
    const size = scan.blobs.get(d.digest);
    if (size === undefined) throw layoutErr(`${what} ${d.digest} is referenced but not in the bundle`);
    if (size !== d.size) throw new KbundleError(`${file}: ${what} ${d.digest} is ${size} bytes, descriptor declares ${d.size}`, ExitCode.DigestMismatch);
    const b = scan.small.get(d.digest);
    if (!b) throw new KbundleError(`${file}: ${what} ${d.digest} is too large or not JSON`, ExitCode.LimitExceeded);
    reachable.add(d.digest);
    return b;
  };
  const blobRef = (d: Descriptor, what: string): void => {
    checkDescriptor(d, what, layoutErr);
    const size = scan.blobs.get(d.digest);
    if (size === undefined) throw layoutErr(`${what} ${d.digest} is referenced but not in the bundle`);
    if (size !== d.size) throw new KbundleError(`${file}: ${what} ${d.digest} is ${size} bytes, descriptor declares ${d.size}`, ExitCode.DigestMismatch);
    reachable.add(d.digest);
  };

  const layout = json<{ imageLayoutVersion?: unknown }>(scan.ociLayout, 'oci-layout');
  if (layout.imageLayoutVersion !== '1.0.0') throw layoutErr(`oci-layout declares version ${JSON.stringify(layout.imageLayoutVersion)}, expected "1.0.0"`);
  const top = json<ImageIndex>(scan.indexJson, 'index.json');
  if (top.schemaVersion !== 2 || top.mediaType !== MediaType.index || !Array.isArray(top.manifests)) throw layoutErr('index.json is not an OCI image index');
  for (const d of top.manifests) {
    if (d.mediaType !== MediaType.index && d.mediaType !== MediaType.manifest) throw layoutErr(`index.json lists unknown media type ${JSON.stringify(d.mediaType)}`);
  }
  const bundles = top.manifests.filter((d) => d.artifactType === ArtifactType.bundle);
  const sigs = top.manifests.filter((d) => d.artifactType === ArtifactType.signature);
  if (bundles.length !== 1 || bundles[0].mediaType !== MediaType.index) throw layoutErr('index.json must list exactly one kbundle bundle index');
  if (top.manifests.length !== bundles.length + sigs.length) throw layoutErr('index.json lists entries that are neither the bundle index nor its signature');
  if (sigs.length === 0) throw new KbundleError(`${file}: bundle is not signed (no signature manifest in index.json)`, ExitCode.BadSignature);
  if (sigs.length > 1) throw layoutErr('index.json lists more than one signature manifest');
  const bundleDesc = bundles[0];
  const indexBytes = blobBytes(bundleDesc, 'bundle index');

  // Signature before anything inside the bundle index is believed.
  const sigManBytes = blobBytes(sigs[0], 'signature manifest');
  const sigMan = json<ImageManifest>(sigManBytes, 'signature manifest');
  if (sigMan.mediaType !== MediaType.manifest || sigMan.artifactType !== ArtifactType.signature || !Array.isArray(sigMan.layers)) {
    throw layoutErr('signature manifest is malformed');
  }
  const emptyBytes = blobBytes(sigMan.config, 'signature config');
  if (sigMan.config.mediaType !== MediaType.empty || !emptyBytes.equals(EMPTY_JSON)) throw layoutErr('signature manifest config must be the OCI empty descriptor');
  if (sigMan.layers.length !== 1 || sigMan.layers[0].mediaType !== MediaType.signature) throw layoutErr('signature manifest must have exactly one minisig layer');
  if (sigMan.subject?.digest !== bundleDesc.digest) {
    throw new KbundleError(`${file}: the signature is for ${sigMan.subject?.digest ?? 'nothing'}, not for the bundle index ${bundleDesc.digest}`, ExitCode.BadSignature);
  }
  const sigBlob = blobBytes(sigMan.layers[0], 'signature');
  const sigText = sigBlob.toString('utf8');
  const verified = opts.skipSignature ? describeMinisign(sigText) : verifyMinisign(indexBytes, sigText, opts.trustedKeys);
  if (!verified.trustedComment.split(' ').includes(`kbundle-index=${bundleDesc.digest}`)) {
    throw new KbundleError(`${file}: signed trusted comment does not name this bundle index (${verified.trustedComment})`, ExitCode.BadSignature);
  }

  const index = json<ImageIndex>(indexBytes, 'bundle index');
  if (index.schemaVersion !== 2 || index.mediaType !== MediaType.index || index.artifactType !== ArtifactType.bundle || !Array.isArray(index.manifests)) {
    throw layoutErr('bundle index is not a kbundle image index');
  }
  const ann = index.annotations ?? {};
  checkEnvelope({
    scan,
    index: { digest: bundleDesc.digest, size: indexBytes.length },
    annotations: ann,
    sigBlob,
    trustedComment: verified.trustedComment,
    keyId: verified.keyId,
    sigManifest: { digest: sigs[0].digest, bytes: sigManBytes, parsed: sigMan },
    topIndex: top,
  });
  const packages = new Map<string, PackageSummary>();
  const pendingTargets: { key: string; t: TargetSummary }[] = [];
  for (const d of index.manifests) {
    if (d.mediaType !== MediaType.manifest) throw layoutErr(`bundle index lists unknown media type ${JSON.stringify(d.mediaType)}`);
    const m = json<ImageManifest>(blobBytes(d, 'manifest'), `manifest ${d.digest}`);
    if (m.schemaVersion !== 2 || m.mediaType !== MediaType.manifest || !m.config || !Array.isArray(m.layers)) throw layoutErr(`manifest ${d.digest} is not an OCI image manifest`);
    if (m.artifactType !== d.artifactType) throw layoutErr(`manifest ${d.digest}: artifactType differs from its descriptor`);
    if (m.artifactType === ArtifactType.source) {
      if (m.config.mediaType !== MediaType.packageConfig) throw layoutErr(`source manifest ${d.digest}: unknown config media type ${m.config.mediaType}`);
      const config = json<PackageConfig>(blobBytes(m.config, 'package config'), `package config ${m.config.digest}`);
      if (m.layers.length !== 1 || m.layers[0].mediaType !== MediaType.source) throw layoutErr(`source manifest ${d.digest} must have one ${MediaType.source} layer`);
      blobRef(m.layers[0], 'source');
      if (config.schemaVersion !== 1 || typeof config.name !== 'string' || !config.source || !DIGEST_RE.test(config.source.digest)) throw layoutErr(`package config ${m.config.digest} is malformed`);
      const key = `${config.name}\0${config.version}`;
      if (packages.has(key)) throw layoutErr(`package ${config.name} ${config.version} has two source manifests`);
      packages.set(key, { name: config.name, version: config.version, manifestDigest: d.digest, config, source: m.layers[0], targets: [] });
    } else if (m.artifactType === ArtifactType.target) {
      if (m.config.mediaType !== MediaType.targetConfig) throw layoutErr(`target manifest ${d.digest}: unknown config media type ${m.config.mediaType}`);
      const config = json<TargetConfig>(blobBytes(m.config, 'target config'), `target config ${m.config.digest}`);
      if (config.schemaVersion !== 1 || !config.package || !Array.isArray(config.modules)) throw layoutErr(`target config ${m.config.digest} is malformed`);
      const a = m.annotations ?? {};
      if (a[Annotation.kernelRelease] !== config.kernelRelease || a[Annotation.arch] !== config.arch || a[Annotation.packageName] !== config.package.name) {
        throw layoutErr(`target manifest ${d.digest}: annotations disagree with its config`);
      }
      if (m.layers.length !== config.modules.length) throw layoutErr(`target manifest ${d.digest}: ${m.layers.length} layers for ${config.modules.length} modules`);
      const modules = config.modules.map((mod, i) => {
        const layer = m.layers[i];
        if (layer.mediaType !== MediaType.module) throw layoutErr(`target manifest ${d.digest}: unknown layer media type ${JSON.stringify(layer.mediaType)}`);
        if (layer.digest !== mod.digest || layer.size !== mod.size) throw layoutErr(`target manifest ${d.digest}: layer ${i} does not match module ${mod.name}`);
        blobRef(layer, `module ${mod.name}`);
        return { ...mod, layer };
      });
      pendingTargets.push({
        key: `${config.package.name}\0${config.package.version}`,
        t: { kernelRelease: config.kernelRelease, arch: config.arch, vermagic: config.vermagic, manifestDigest: d.digest, config, modules },
      });
    } else {
      throw layoutErr(`manifest ${d.digest} has unknown artifactType ${JSON.stringify(m.artifactType)}`);
    }
  }
  for (const { key, t } of pendingTargets) {
    const p = packages.get(key);
    if (!p) throw layoutErr(`target ${t.kernelRelease}/${t.arch} belongs to package ${key.replace('\0', ' ')}, which has no source manifest`);
    p.targets.push(t);
  }
  reachable.add(bundleDesc.digest);
  for (const [digest] of scan.blobs) {
    if (!reachable.has(digest)) throw new KbundleError(`${file}: blob ${digest} is not referenced by the signed index`, ExitCode.UnsafeArchive);
  }
  const all = [...packages.values()];
  const kernels = [...new Set(all.flatMap((p) => p.targets.map((t) => t.kernelRelease)))].sort();
  const arches = [...new Set(all.flatMap((p) => p.targets.map((t) => t.arch)))].sort();
  let total = 0;
  for (const s of scan.blobs.values()) total += s;
  return {
    file,
    rootDigest: bundleDesc.digest,
    name: ann[Annotation.title] ?? '',
    version: ann[Annotation.version] ?? '',
    created: ann[Annotation.created] ?? '',
    metadata: metadataFromAnnotations(ann),
    signer: { keyId: verified.keyId, trustedComment: verified.trustedComment },
    packages: all,
    kernels,
    arches,
    blobBytes: total,
  };
}

interface Envelope {
  scan: ScannedArchive;
  index: Digested;
  annotations: Record<string, string>;
  /** The minisign file's bytes. */
  sigBlob: Buffer;
  trustedComment: string;
  keyId: string;
  sigManifest: { digest: string; bytes: Buffer; parsed: ImageManifest };
  /** index.json as parsed. */
  topIndex: ImageIndex;
}

/**
 * Everything outside the signed bundle index must be exactly what the
 * writer derives from it and from the signature (envelope.ts): index.json,
 * the signature manifest, the signature file's unsigned lines, oci-layout.
 * Nothing there then carries a value of its own, which holds without a key
 * too (the bundle is at least consistent with itself).
 */
function checkEnvelope(e: Envelope): void {
  const file = e.scan.file;
  const layoutErr = (msg: string) => new KbundleError(`${file}: ${msg}`, ExitCode.BadLayout);
  const ann = e.annotations;
  const sde = createdEpoch(ann[Annotation.created]);
  if (Number.isNaN(sde) || ann[Annotation.created] !== isoOfEpoch(sde)) {
    throw layoutErr(`bundle index annotation ${Annotation.created} is ${show(ann[Annotation.created])}, not a time in whole seconds as YYYY-MM-DDTHH:MM:SSZ`);
  }
  const ref = `${ann[Annotation.title]}:${ann[Annotation.version]}`;
  if (ann[Annotation.refName] !== ref) throw layoutErr(`bundle index annotation ${Annotation.refName} is ${show(ann[Annotation.refName])}, its title and version give ${show(ref)}`);

  const comment = trustedCommentFor(e.index.digest, ann);
  if (e.trustedComment !== comment) {
    throw new KbundleError(`${file}: signed trusted comment ${JSON.stringify(e.trustedComment)} does not describe the bundle index, which gives ${JSON.stringify(comment)}`, ExitCode.BadSignature);
  }
  const canonicalSig = kbundleSignatureText(e.sigBlob.toString('utf8'));
  if (!e.sigBlob.equals(Buffer.from(canonicalSig, 'utf8'))) {
    const got = e.sigBlob.toString('utf8').split('\n');
    const want = canonicalSig.split('\n');
    const what = got[0] !== want[0] ? `its untrusted comment line is ${show(got[0])}, kbundle writes ${show(want[0])}` : 'its lines are not laid out as kbundle writes them (line endings, final newline)';
    throw new KbundleError(`${file}: the signature file is not in kbundle's form: ${what}`, ExitCode.BadSignature);
  }

  const [config, layer] = [e.sigManifest.parsed.config, e.sigManifest.parsed.layers[0]!];
  const sigMan = signatureManifestFor(e.index, { digest: layer.digest, size: layer.size }, { digest: config.digest, size: config.size }, e.keyId);
  mustEqual(layoutErr, `signature manifest ${e.sigManifest.digest}`, 'the signature', sigMan, e.sigManifest.parsed, e.sigManifest.bytes);
  const top = topIndexFor(e.index, ann, { digest: e.sigManifest.digest, size: e.sigManifest.bytes.length });
  mustEqual(layoutErr, 'index.json', 'the signed bundle index', top, e.topIndex, e.scan.indexJson);
  if (!e.scan.ociLayout.equals(OCI_LAYOUT_BYTES)) throw layoutErr(`oci-layout is not ${OCI_LAYOUT_BYTES.toString()} byte for byte (whitespace, key order or extra members)`);
}

/** `actual` (parsed from `bytes`) must be `expected` in canonical JSON, byte for byte; the message names the first field that differs. */
function mustEqual(err: (m: string) => Error, what: string, source: string, expected: unknown, actual: unknown, bytes: Buffer): void {
  const want = canonicalJsonBytes(expected);
  if (bytes.equals(want)) return;
  const d = firstDifference(JSON.parse(want.toString('utf8')), actual);
  if (d) throw err(`${what} does not match ${source}: ${d.path} is ${show(d.actual)}, ${source} gives ${show(d.expected)}`);
  throw err(`${what} is not in canonical JSON form (whitespace, key order or escaping differ from what kbundle writes for the same content)`);
}

function show(v: unknown): string {
  if (v === undefined) return '(absent)';
  const s = JSON.stringify(v);
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

function checkDescriptor(d: Descriptor, what: string, err: (m: string) => Error): void {
  if (!d || typeof d !== 'object') throw err(`${what}: missing descriptor`);
  if (typeof d.digest !== 'string' || !DIGEST_RE.test(d.digest)) throw err(`${what}: bad digest ${JSON.stringify(d.digest)}`);
  if (!Number.isSafeInteger(d.size) || d.size < 0) throw err(`${what} ${d.digest}: bad size ${JSON.stringify(d.size)}`);
}

