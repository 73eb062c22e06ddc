/**
 * What every package builder works from, whichever the origin: the module's
 * source tree (with dkms.conf) and, per kernel, the built module files.
 *  - DKMS tree: <sourcetree>/<m>-<v> (through <dkmstree>/<m>/<v>/source) and
 *    <dkmstree>/<m>/<v>/<kernel>/<arch>/module/*.ko*.
 *  - bundle: verified first (signature, layout, every digest — the same
 *    openVerified `bundle install` uses); then its source layer and the module
 *    blobs, byte for byte as the bundle carries them (signatures intact).
 */
import { mkdtemp, readdir, realpath, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtModulesDir, sourceLink, versionDir, type Roots } from '../tree/paths.js';
import { BundleExit, newestMtime, type OpenBundle } from '../bundle/index.js';
import { KbundleError } from '../util/errors.js';
import { isDir } from '../util/fs.js';
import { PackagesExit } from './exit-codes.js';

export interface ModuleFile {
  /** Module name without .ko (e.g. `hello`). */
  name: string;
  /** File holding its bytes: .ko, or .ko.gz/.xz/.zst as the DKMS tree keeps it. */
  path: string;
}

export interface KernelBinaries {
  kernel: string;
  arch: string;
  modules: ModuleFile[];
}

export interface PackageInput {
  module: string;
  version: string;
  sourceDir: string;
  kernels: KernelBinaries[];
  /** SOURCE_DATE_EPOCH of every output. */
  epoch: number;
  /** For messages and package descriptions. */
  origin: string;
  /** Removes the temp copies a bundle input was unpacked to. */
  cleanup(): Promise<void>;
}

export interface KernelRequest {
  kernel: string;
  arch: string;
}

/** SOURCE_DATE_EPOCH if set (must be a whole number), else the fallback. */
export function epochFrom(fallback: number): number {
  const e = process.env.SOURCE_DATE_EPOCH;
  if (e === undefined || e === '') return fallback;
  if (!/^\d+$/.test(e)) throw new KbundleError(`SOURCE_DATE_EPOCH must be a whole number of seconds, got "${e}".`, PackagesExit.BadOption);
  return Number(e);
}

async function modulesIn(dir: string): Promise<ModuleFile[]> {
  const names = (await readdir(dir)).filter((n) => /\.ko(\.gz|\.xz|\.zst)?$/.test(n)).sort();
  return names.map((n) => ({ name: n.replace(/\.ko(\.gz|\.xz|\.zst)?$/, ''), path: join(dir, n) }));
}

/** Every <kernel>/<arch> the module is built for in the DKMS tree, in byte order. */
async function builtKernels(roots: Roots, m: { module: string; version: string }): Promise<KernelRequest[]> {
  const out: KernelRequest[] = [];
  const vdir = versionDir(roots, m);
  for (const k of (await readdir(vdir)).sort()) {
    if (k === 'source' || k === 'build' || k === 'tarball' || k.startsWith('build-') || k.startsWith('.')) continue;
    if (!(await isDir(join(vdir, k)))) continue;
    for (const a of (await readdir(join(vdir, k))).sort()) {
      if (await isDir(join(vdir, k, a, 'module'))) out.push({ kernel: k, arch: a });
    }
  }
  return out;
}

/** From the DKMS tree: `kernels` empty means every kernel the module is built for. */
export async function inputFromTree(roots: Roots, m: { module: string; version: string }, kernels: KernelRequest[], needBinaries: boolean): Promise<PackageInput> {
  let sourceDir: string;
  try {
    sourceDir = await realpath(sourceLink(roots, m));
  } catch {
    throw new KbundleError(`Module ${m.module}/${m.version} is not in the DKMS tree ${roots.dkmsTree} (add it first: kbundle add ${m.module}/${m.version}).`, PackagesExit.UnknownModule);
  }
  if (!(await isDir(sourceDir))) throw new KbundleError(`Module ${m.module}/${m.version}: its source ${sourceDir} is missing.`, PackagesExit.UnknownModule);
  const wanted = kernels.length ? kernels : needBinaries ? await builtKernels(roots, m) : [];
  if (needBinaries && !wanted.length) throw new KbundleError(`Module ${m.module}/${m.version} is not built for any kernel; build it first (kbundle build ${m.module}/${m.version} -k KERNEL).`, PackagesExit.NotBuilt);
  const out: KernelBinaries[] = [];
  for (const t of wanted) {
    const dir = builtModulesDir(roots, m, t);
    const mods = (await isDir(dir)) ? await modulesIn(dir) : [];
    if (!mods.length) {
      throw new KbundleError(`Module ${m.module}/${m.version} is not built for kernel ${t.kernel} (${t.arch}); build it first (kbundle build ${m.module}/${m.version} -k ${t.kernel}).`, PackagesExit.NotBuilt);
    }
    out.push({ ...t, modules: mods });
  }
  return {
    module: m.module,
    version: m.version,
    sourceDir,
    kernels: out,
    epoch: epochFrom(await newestMtime(sourceDir)),
    origin: 'DKMS tree',
    cleanup: async () => undefined,
  };
}

/**
 * From an opened (verified) bundle. `pkgName` picks one of several packages
 * (`-m`); `kernels` empty means every kernel the bundle holds.
 */
export async function inputFromBundle(bundle: OpenBundle, pkgName: string | undefined, kernels: KernelRequest[]): Promise<PackageInput> {
  const pkgs = bundle.index.packages;
  const pkg = pkgName ? pkgs.find((p) => p.name === pkgName) : pkgs.length === 1 ? pkgs[0] : undefined;
  if (!pkg) {
    throw new KbundleError(
      pkgName ? `The bundle has no package ${pkgName} (has: ${pkgs.map((p) => p.name).join(', ')}).` : `The bundle holds several packages (${pkgs.map((p) => p.name).join(', ')}); pick one with -m NAME.`,
      PackagesExit.UnknownModule,
    );
  }
  const targets = kernels.length
    ? kernels.map((k) => {
        const t = pkg.targets.find((x) => x.kernelRelease === k.kernel && x.arch === k.arch);
        if (!t) {
          const has = pkg.targets.map((x) => `${x.kernelRelease}/${x.arch}`).join(', ');
          throw new KbundleError(`${pkg.name}/${pkg.version}: the bundle has no binary for kernel ${k.kernel} (${k.arch}); it has ${has || 'none'}.`, PackagesExit.NotBuilt);
        }
        return t;
      })
    : [...pkg.targets].sort((a, b) => (a.kernelRelease + '/' + a.arch < b.kernelRelease + '/' + b.arch ? -1 : 1));
  const work = await mkdtemp(join(tmpdir(), 'kbundle-pkg-in-'));
  try {
    // The source layer holds one top directory <name>-<version>/ (docs/bundle-format.md), as the installer reads it.
    await bundle.extractSource(pkg.name, join(work, 'source'));
    const sourceDir = join(work, 'source', `${pkg.name}-${pkg.version}`);
    if (!(await isDir(sourceDir))) throw new KbundleError(`the bundle's source of ${pkg.name}/${pkg.version} has no ${pkg.name}-${pkg.version}/ directory.`, BundleExit.BadLayout);
    const blobs = join(work, 'blobs');
    const digests = targets.flatMap((t) => t.modules.map((m) => m.digest));
    await bundle.copyBlobsTo(blobs, [...new Set(digests)]);
    const created = Math.floor(Date.parse(bundle.index.created) / 1000);
    return {
      module: pkg.name,
      version: pkg.version,
      sourceDir,
      kernels: targets.map((t) => ({
        kernel: t.kernelRelease,
        arch: t.arch,
        modules: [...t.modules].sort((a, b) => (a.name < b.name ? -1 : 1)).map((m) => ({ name: m.name, path: join(blobs, m.digest.replace(/^sha256:/, '')) })),
      })),
      epoch: epochFrom(Number.isFinite(created) ? created : 0),
      origin: `bundle ${bundle.index.name}-${bundle.index.version} (${bundle.index.rootDigest})`,
      cleanup: () => rm(work, { recursive: true, force: true }),
    };
  } catch (e) {
    await rm(work, { recursive: true, force: true });
    throw e;
  }
}
