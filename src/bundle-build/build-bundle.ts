/**
 * `kbundle bundle build`: manifest -> matrix (optionally one shard) -> builds
 * through the core in a private DKMS tree (cache included) -> every module
 * signed -> one reproducible bundle. Modules are stored signed and
 * uncompressed; the installer compresses them the way the target kernel's
 * own modules are (a bundle serves kernels with different policies).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { pairManifestKernels } from '../arch/manifest-pairs.js';
import { basename, dirname, join, resolve } from 'node:path';
import { buildTarget } from '../build/build-target.js';
import { runPool, scheduleBuilds } from '../build/plan.js';
import { loadSecretKey } from '../sign/minisign.js';
import { newestMtime } from '../tar/repro-tar.js';
import { writeBundle, type ModuleSpec, type PackageSpec, type TargetSpec, type WriteResult } from '../bundle/write/writer.js';
import { loadManifest } from '../manifest/load.js';
import { resolveKernelTargets } from '../manifest/kernels.js';
import type { Manifest, ResolvedKernel } from '../manifest/types.js';
import { addModule, identifyConf } from '../lifecycle/add.js';
import { asKbundleError } from '../lifecycle/build.js';
import type { RunContext } from '../lifecycle/context.js';
import type { Progress } from '../progress/progress.js';
import { kernelArchDir, type ModuleRef, type Roots } from '../tree/paths.js';
import { BUILD_RECORD, readJsonRecord, type BuildRecord } from '../tree/records.js';
import { KbundleError } from '../util/errors.js';
import { describeModule } from './describe-module.js';
import { buildMatrix, shardOf, type MatrixEntry, type Shard } from './matrix.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ExitCode } from '../util/exit-codes.js';

const run = promisify(execFile);

export interface BundleBuildOptions {
  manifestPath: string;
  output?: string;
  shard: Shard | null;
  keepGoing: boolean;
  jobs: number;
  noCache: boolean;
  cacheDir: string;
  progress: Progress;
  say(line: string): void;
  warn(line: string): void;
}

export interface BundleBuildResult {
  file: string;
  write: WriteResult;
  built: Array<{ package: string; kernel: string; arch: string }>;
  missing: Array<{ package: string; kernel: string; arch: string; reason: string; log?: string }>;
}

function requireFile(path: string | undefined, what: string): string {
  if (!path) throw new KbundleError(`kbundle.yaml has no ${what}; every module in a bundle is signed and the bundle index is signed.`, ExitCode.BadManifest);
  if (!existsSync(path)) throw new KbundleError(`${what} ${path} does not exist.`, ExitCode.BadKey);
  return path;
}

/** A private DKMS layout: the user's trees are never touched by a bundle build. */
async function privateRoots(work: string, kernels: ResolvedKernel[]): Promise<Roots> {
  const roots = { dkmsTree: join(work, 'dkms'), sourceTree: join(work, 'src'), installTree: join(work, 'modules') };
  for (const d of Object.values(roots)) await mkdir(d, { recursive: true });
  for (const k of kernels) {
    await mkdir(join(roots.installTree, k.release), { recursive: true });
    await symlink(k.headers, join(roots.installTree, k.release, 'build'));
  }
  return roots;
}

export async function buildBundle(o: BundleBuildOptions): Promise<BundleBuildResult> {
  const manifest: Manifest = await loadManifest(o.manifestPath);
  const kernels = resolveKernelTargets(manifest.kernels);
  // Each kernel builds for the arch of its own headers (cross builds: docs/cross-arch.md).
  const pairs = pairManifestKernels(manifest, kernels);
  const moduleKey = requireFile(manifest.signing?.moduleKey, 'signing.moduleKey');
  const moduleCert = requireFile(manifest.signing?.moduleCert, 'signing.moduleCert');
  const bundleKey = await loadSecretKey(requireFile(manifest.bundleKey, 'bundleKey'));

  const work = await mkdtemp(join(tmpdir(), 'kbundle-bundle-'));
  let keepWork = false;
  try {
    const roots = await privateRoots(work, kernels);
    const ctx: RunContext = {
      roots,
      etcDir: join(work, 'etc'),
      framework: { mokSigningKey: moduleKey, mokCertificate: moduleCert, signHash: manifest.signing?.hash },
      jobs: o.jobs,
      force: false,
      noCache: o.noCache,
      cacheDir: o.cacheDir,
      noDepmod: true,
      quiet: true,
      verbose: false,
      osRelease: null,
      directives: [],
      progress: o.progress,
      say: () => {},
      warn: o.warn,
    };
    const first = { kernel: pairs[0]!.kernel, arch: pairs[0]!.arch };
    const modules: ModuleRef[] = [];
    for (const src of manifest.sources) {
      const m = await identifyConf(ctx, join(src, 'dkms.conf'), first);
      await run('cp', ['-a', src, join(roots.sourceTree, `${m.module}-${m.version}`)]);
      await addModule(ctx, m, first);
      modules.push(m);
    }

    const paired = new Set(pairs.map((x) => `${x.kernel}\0${x.arch}`));
    const matrix = shardOf(buildMatrix(modules.length, kernels.map((k) => k.release), manifest.arches).filter((e) => paired.has(`${e.kernel}\0${e.arch}`)), o.shard);
    const { concurrency, jobsPerMake } = scheduleBuilds(matrix.length, o.jobs);
    const outcomes = await runPool(matrix, concurrency, async (e: MatrixEntry) => {
      try {
        await buildTarget(ctx, modules[e.source]!, { kernel: e.kernel, arch: e.arch }, jobsPerMake);
        return { e, error: null };
      } catch (err) {
        return { e, error: asKbundleError(err) };
      }
    });
    const failed = outcomes.filter((x) => x.error);
    const missing = failed.map((x) => ({
      package: modules[x.e.source]!.module,
      kernel: x.e.kernel,
      arch: x.e.arch,
      reason: x.error!.message,
      log: x.error!.details.find((d) => d.startsWith('Consult '))?.replace(/^Consult (.*) for more information\.$/, '$1'),
    }));
    if (failed.length && !o.keepGoing) {
      keepWork = true;
      const f = failed[0]!;
      throw new KbundleError(
        `Building ${modules[f.e.source]!.module}/${modules[f.e.source]!.version} for kernel ${f.e.kernel} (${f.e.arch}) failed: ${f.error!.message}`,
        f.error!.exitCode,
        [...f.error!.details, ...(failed.length > 1 ? [`${failed.length - 1} more kernel(s) failed too.`] : []), 'No bundle was written. --keep-going writes one without the failed kernels.'],
      );
    }
    for (const m of missing) o.warn(`${m.package} for ${m.kernel} (${m.arch}) is missing from the bundle: ${m.reason}${m.log ? ` (log: ${m.log})` : ''}`);

    const headersOf = new Map(kernels.map((k) => [k.release, k.headers]));
    const packages: PackageSpec[] = [];
    const built: BundleBuildResult['built'] = [];
    for (const [i, m] of modules.entries()) {
      const targets: TargetSpec[] = [];
      let moduleRefs: PackageSpec['modules'] = [];
      for (const x of outcomes.filter((y) => y.e.source === i && !y.error)) {
        const t = { kernel: x.e.kernel, arch: x.e.arch };
        const kad = kernelArchDir(roots, m, t);
        const record = await readJsonRecord<BuildRecord>(join(kad, BUILD_RECORD));
        if (!record) throw new KbundleError(`internal: no build record in ${kad}`);
        const specs: ModuleSpec[] = [];
        let vermagic = '';
        for (const r of record.modules) {
          const file = join(kad, 'module', r.file);
          const facts = await describeModule(file);
          vermagic ||= facts.vermagic;
          specs.push({
            name: r.destName,
            file,
            destLocation: r.destLocation,
            srcversion: facts.srcversion,
            depends: facts.depends,
            versions: facts.versions,
            machine: facts.machine,
            sig: record.signed ? { signer: record.signed.signer, keyId: record.signed.keyId, hash: record.signed.hash } : undefined,
          });
        }
        moduleRefs = record.modules.map((r) => ({ name: r.destName, destLocation: r.destLocation }));
        const symvers = join(headersOf.get(t.kernel)!, 'Module.symvers');
        targets.push({
          kernelRelease: t.kernel,
          arch: t.arch,
          vermagic,
          symversDigest: existsSync(symvers) ? `sha256:${createHash('sha256').update(await readFile(symvers)).digest('hex')}` : undefined,
          modules: specs,
        });
        built.push({ package: m.module, kernel: t.kernel, arch: t.arch });
      }
      packages.push({ name: m.module, version: m.version, modules: moduleRefs, source: { dir: manifest.sources[i]! }, targets });
    }

    const epoch = manifest.sourceDateEpoch ?? (process.env.SOURCE_DATE_EPOCH ? Number(process.env.SOURCE_DATE_EPOCH) : Math.max(...(await Promise.all(manifest.sources.map((s) => newestMtime(s))))));
    const metadata = { ...manifest.metadata };
    if (missing.length) metadata.missing = missing.map((m) => `${m.package}@${m.kernel}/${m.arch}`).join(' ');
    const name = manifest.name ?? modules[0]!.module;
    const version = manifest.version ?? modules[0]!.version;
    const out = resolve(o.output ?? manifest.output ?? join(dirname(manifest.file), `${name}-${version}${o.shard ? `.shard-${o.shard.index}-of-${o.shard.count}` : ''}.kbundle`));
    const write = await writeBundle(
      { name, version, sourceDateEpoch: epoch, metadata, compressionLevel: manifest.compression.level, signingKey: bundleKey, packages },
      out,
    );
    o.say(`Wrote ${out} (${basename(out)}: ${write.digest}, ${built.length} binaries${missing.length ? `, ${missing.length} missing` : ''})`);
    return { file: out, write, built, missing };
  } finally {
    if (keepWork) o.warn(`The build tree with the failed kernel's logs was kept: ${work}`);
    else await rm(work, { recursive: true, force: true });
  }
}
