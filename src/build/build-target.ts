/**
 * Builds one module version for one (kernel, arch), DKMS's do_build order:
 * copy source -> PATCH -> PRE_BUILD -> CLEAN -> MAKE -> check BUILT_MODULEs
 * -> POST_BUILD, then per module strip -> sign -> compress into a staging dir
 * that is renamed onto <m>/<v>/<k>/<a> (so a half-built kernel never looks
 * built). The make step is skipped when the build cache has the result.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, realpath, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { beginOp, endOp } from '../recovery/journal.js';
import { opBase } from '../recovery/ops.js';
import { commitStagedDir, copyFileDurable, removeDurable, removeIfEmpty, sweepTemps, tempPathFor } from '../util/atomic.js';
import { digestTree } from '../cache/source-digest.js';
import { cacheKey, headerIdentity } from '../cache/key.js';
import { BuildCache } from '../cache/store.js';
import type { EvaluatedConf } from '../conf/types.js';
import { buildDir, kernelArchDir, kernelBuildDir, sourceLink, type ModuleRef, type Target } from '../tree/paths.js';
import { BUILD_RECORD, writeJsonRecord, type BuildRecord } from '../tree/records.js';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';
import { evaluateFor, kernelSourceDirFor, type RunContext } from '../lifecycle/context.js';
import { injectMakeFlags, redirectBuildDir, shellPrelude, shellQuote } from './make-command.js';
import { MakeLog } from './make-log.js';
import { buildEnv, compilerVersion, kernelCc } from './toolchain.js';
import { paholeShimDir } from './pahole-shim.js';
import { crossMakeEnv } from '../arch/toolchain.js';
import { builtPath, packagedKey, packageModules, planPackaging, type Packaging } from './package-modules.js';

export type BuildResult = 'built' | 'cached' | 'already-built';

/** Steps shown on the progress bar. */
export const BUILD_STEPS = 5;

const label = (m: ModuleRef, t: Target) => `${m.module}/${m.version} ${t.kernel} (${t.arch})`;


/** The recipe part of the cache key, with this tree's paths abstracted away. */
function recipe(conf: EvaluatedConf, dirs: { build: string; kbuild: string; dkmsTree: string; installTree: string; sourceTree: string }) {
  // Longest first: the build dirs live inside the DKMS tree.
  const places: Array<[string, string]> = [
    [dirs.kbuild, '@BUILD@'],
    [dirs.build, '@BUILD@'],
    [dirs.dkmsTree, '@DKMS_TREE@'],
    [dirs.installTree, '@INSTALL_TREE@'],
    [dirs.sourceTree, '@SOURCE_TREE@'],
  ];
  const norm = (s: string | null) => (s === null ? null : places.reduce((acc, [from, to]) => acc.split(from).join(to), s));
  return {
    make: norm(conf.make),
    clean: norm(conf.clean),
    preBuild: norm(conf.preBuild),
    postBuild: norm(conf.postBuild),
    patches: conf.patches,
    modules: conf.modules.map((m) => [m.builtLocation, m.builtName]),
  };
}

export async function isBuilt(ctx: RunContext, m: ModuleRef, t: Target): Promise<boolean> {
  return existsSync(join(kernelArchDir(ctx.roots, m, t), 'module'));
}

export async function buildTarget(ctx: RunContext, m: ModuleRef, t: Target, jobsPerMake: number): Promise<BuildResult> {
  const id = `${t.kernel}/${t.arch}`;
  const kad = kernelArchDir(ctx.roots, m, t);
  if (await isBuilt(ctx, m, t)) {
    ctx.say(`Module ${m.module}/${m.version} already built for kernel ${t.kernel} (${t.arch}), skip. You may override by specifying --force.`);
    return 'already-built';
  }
  const conf = await evaluateFor(ctx, m, t);
  for (const w of conf.warnings) ctx.warn(w);
  if (conf.excluded) {
    throw new KbundleError(
      `The ${m.module}/${m.version} module is not buildable for kernel ${t.kernel} (${t.arch}): its dkms.conf includes BUILD_EXCLUSIVE directive(s) which do not match this kernel/arch/config.`,
      ExitCode.Excluded,
      conf.excludeReasons.map((r) => `  ${r}`),
    );
  }
  const ksrc = kernelSourceDirFor(ctx, t.kernel);
  if (!existsSync(join(ksrc, 'include'))) {
    throw new KbundleError(`Your kernel headers for kernel ${t.kernel} cannot be found at ${ksrc}.`, ExitCode.NoHeaders, [
      `Install them (on Debian: apt-get install linux-headers-${t.kernel}) or point --kernelsourcedir at them.`,
    ]);
  }

  ctx.progress.start(id, label(m, t), BUILD_STEPS);
  const source = await realpath(sourceLink(ctx.roots, m));
  const kbuild = kernelBuildDir(ctx.roots, m, t);
  const dkmsBuild = buildDir(ctx.roots, m);
  // Another arch's headers (paired by their .config): ARCH and CROSS_COMPILE for make.
  const cross = crossMakeEnv(t.arch);
  const cc = await kernelCc(ksrc, cross.CROSS_COMPILE);
  const env = { ...buildEnv(cc), ...cross };
  env.PATH = `${await paholeShimDir(ctx.cacheDir)}:${env.PATH ?? '/usr/bin:/bin'}`;

  const packaging = await planPackaging(ctx, t, ksrc);
  let key: string | null = null;
  let packKey: string | null = null;
  const cache = new BuildCache(ctx.cacheDir);
  if (!ctx.noCache) {
    ctx.progress.step(id, 'cache lookup');
    key = cacheKey({
      sourceDigest: await digestTree(source),
      kernel: t.kernel,
      arch: t.arch,
      headersDigest: await headerIdentity(ksrc),
      compiler: await compilerVersion(cc),
      recipe: recipe(conf, { build: dkmsBuild, kbuild, dkmsTree: ctx.roots.dkmsTree, installTree: ctx.roots.installTree, sourceTree: ctx.roots.sourceTree }),
    });
    packKey = await packagedKey(key, conf, packaging);
  }
  // A finished (stripped, signed, compressed) result skips make and packaging;
  // a raw one skips make only.
  const packedHit = packKey ? await cache.get(packKey) : null;
  const hit = packedHit ?? (key ? await cache.get(key) : null);

  // Journaled so that a killed build's staging and scratch dirs are rolled back by recovery.
  const staging = tempPathFor(kad);
  const op = await beginOp(ctx.roots.dkmsTree, { ...opBase(ctx, m), kind: 'build', kernel: t.kernel, arch: t.arch, staging, buildDir: kbuild });
  try {
    const result = await buildStaged(ctx, m, t, { id, kad, staging, kbuild, dkmsBuild, source, ksrc, env, conf, cache, key, packKey, packedHit, hit, jobsPerMake, packaging });
    // Tidying build/ must not turn a finished build into a failed one.
    await sharedBuildLog(ctx, m, dkmsBuild, null).catch((err: Error) => ctx.warn(`could not tidy ${dkmsBuild}: ${err.message}`));
    return result;
  } catch (e) {
    // Without a cache hit kbuild was emptied before this run's make.log was started in it.
    const log = join(kbuild, 'make.log');
    if (hit || !existsSync(log)) throw e;
    // The build's own error is what the user needs; a failed copy only costs a detail line.
    const extra = await sharedBuildLog(ctx, m, dkmsBuild, { target: t, log }).catch(
      (err: Error) => `Could not copy this log to ${join(dkmsBuild, 'make.log')}: ${err.message}`,
    );
    if (!(e instanceof KbundleError)) throw e;
    throw new KbundleError(e.message, e.exitCode, [...e.details, extra]);
  } finally {
    await removeIfEmpty(dirname(kad));
    await endOp(ctx.roots.dkmsTree, op.id);
  }
}

/**
 * dkms keeps a failed build's log at <m>/<v>/build/make.log (/usr/sbin/dkms
 * 3.0.10 actual_build: build_log="$build_dir/make.log", "Consult $build_log
 * for more information."); Debian's dkms-autopkgtest prints that file and
 * Ubuntu's apport hook attaches it. kbundle builds each kernel in its own
 * dir, so a failure copies its log there too. dkms stops at its first failed
 * kernel, so build/make.log is the first failure of this run; later ones
 * leave it and say where it is. A build that succeeds before any failure of
 * the run removes a stale log (dkms removes build/ after a success), and an
 * emptied build/ goes with it.
 */
interface SharedBuildLog {
  first: Target | null;
  /** Copies, removals and the emptiness check of one build/ dir happen one at a time. */
  queue: Promise<unknown>;
}

/** Keyed by the run (concurrent kernels of one command share a RunContext) and the module version's build/ dir. */
const sharedLogs = new WeakMap<RunContext, Map<string, SharedBuildLog>>();

async function sharedBuildLog(ctx: RunContext, m: ModuleRef, dkmsBuild: string, failed: { target: Target; log: string } | null): Promise<string> {
  let perRun = sharedLogs.get(ctx);
  if (!perRun) sharedLogs.set(ctx, (perRun = new Map()));
  let state = perRun.get(dkmsBuild);
  if (!state) perRun.set(dkmsBuild, (state = { first: null, queue: Promise.resolve() }));
  const s = state;
  const dest = join(dkmsBuild, 'make.log');
  const step = s.queue.then(async (): Promise<string> => {
    // A copy killed mid-way leaves a temp here, and recovery does not look inside build dirs.
    await sweepTemps([dkmsBuild]);
    if (failed && !s.first) {
      s.first = failed.target;
      await copyFileDurable(failed.log, dest, { durable: false });
      return `A copy of this log is at ${dest} (where dkms keeps the log of a failed build).`;
    }
    if (failed) {
      const f = s.first!;
      return `${dest} holds the log of ${m.module}/${m.version} for kernel ${f.kernel} (${f.arch}), the first kernel that failed in this run.`;
    }
    if (!s.first) await removeDurable(dest, false);
    await removeIfEmpty(dkmsBuild);
    return '';
  });
  s.queue = step.catch(() => undefined);
  return step;
}

interface StagedBuild {
  id: string;
  kad: string;
  staging: string;
  kbuild: string;
  dkmsBuild: string;
  source: string;
  ksrc: string;
  env: NodeJS.ProcessEnv;
  conf: EvaluatedConf;
  cache: BuildCache;
  key: string | null;
  packKey: string | null;
  packedHit: Awaited<ReturnType<BuildCache['get']>>;
  hit: Awaited<ReturnType<BuildCache['get']>>;
  jobsPerMake: number;
  packaging: Packaging;
}

/** make (or a cache restore), then packaging, all in `staging`, published by one rename onto <k>/<a>. */
async function buildStaged(ctx: RunContext, m: ModuleRef, t: Target, b: StagedBuild): Promise<BuildResult> {
  const { id, kad, staging, kbuild, dkmsBuild, source, ksrc, env, conf, cache, key, packKey, packedHit, hit, jobsPerMake, packaging } = b;
  await mkdir(join(staging, 'module'), { recursive: true });
  await mkdir(join(staging, 'log'), { recursive: true });
  const title = `DKMS make.log for ${m.module}-${m.version} for kernel ${t.kernel} (${t.arch})`;

  let rawDir: string;
  let log: MakeLog;
  try {
    if (packedHit) {
      log = await MakeLog.create(join(staging, 'log', 'make.log'), title);
      rawDir = join(staging, '.cache-restore');
      await cache.restore(packedHit, join(staging, 'module'));
      log.note(`Restored from the kbundle build cache (key ${key}, packaged ${packKey}); make was not run.`);
    } else if (hit && key) {
      log = await MakeLog.create(join(staging, 'log', 'make.log'), title);
      rawDir = join(staging, '.cache-restore');
      await cache.restore(hit, rawDir);
      log.note(`Restored from the kbundle build cache (key ${key}); make was not run.`);
    } else {
      ctx.progress.step(id, 'make');
      await rm(kbuild, { recursive: true, force: true });
      await mkdir(kbuild, { recursive: true });
      log = await MakeLog.create(join(kbuild, 'make.log'), title);
      rawDir = kbuild;
      await runBuildSteps(ctx, m, t, conf, { source, kbuild, dkmsBuild, ksrc, env, log, jobsPerMake });
      if (key) {
        const names = conf.modules.map((_, i) => builtPath(conf, i));
        if (existsSync(join(kbuild, 'Module.symvers'))) names.push('Module.symvers');
        await cache.put(key, kbuild, names, { module: m.module, version: m.version, kernel: t.kernel, arch: t.arch });
      }
    }
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    ctx.progress.finish(id, 'failed');
    throw e;
  }

  try {
    ctx.progress.step(id, 'sign');
    let record: BuildRecord;
    if (packedHit) {
      record = JSON.parse(packedHit.meta.record ?? 'null') as BuildRecord;
      if (!record) throw new KbundleError(`kbundle build cache entry ${packKey} has no build record; remove ${ctx.cacheDir} or use --no-cache.`);
    } else {
      record = await packageModules(ctx, m, t, conf, { rawDir, staging, log }, packaging);
      if (packKey) {
        const names = readdirSync(join(staging, 'module')).sort();
        await cache.put(packKey, join(staging, 'module'), names, { module: m.module, kernel: t.kernel, record: JSON.stringify(record) });
      }
    }
    record.cacheKey = key;
    record.fromCache = Boolean(hit);
    await log.close();
    if (!hit) await rename(log.path, join(staging, 'log', 'make.log'));
    await writeJsonRecord(join(staging, BUILD_RECORD), record);
    await rm(join(staging, '.cache-restore'), { recursive: true, force: true });
    await commitStagedDir(staging, kad);
    if (!hit) await removeDurable(kbuild);
  } catch (e) {
    // The log may still be open if packaging failed; flush it, it is what the user will read.
    await log.close().catch(() => undefined);
    await rm(staging, { recursive: true, force: true });
    ctx.progress.finish(id, 'failed');
    throw e;
  }
  ctx.progress.finish(id, hit ? 'cached' : 'done');
  return hit ? 'cached' : 'built';
}

interface StepDirs {
  source: string;
  kbuild: string;
  dkmsBuild: string;
  ksrc: string;
  env: NodeJS.ProcessEnv;
  log: MakeLog;
  jobsPerMake: number;
}

async function runBuildSteps(ctx: RunContext, m: ModuleRef, t: Target, conf: EvaluatedConf, d: StepDirs): Promise<void> {
  const fail = async (message: string, code: number): Promise<never> => {
    await d.log.close().catch(() => undefined);
    throw new KbundleError(message, code, [`Consult ${d.log.path} for more information.`, `The build directory was kept: ${d.kbuild}`]);
  };
  const vars = shellPrelude({
    kernelver: t.kernel,
    arch: t.arch,
    kernel_source_dir: d.ksrc,
    dkms_tree: ctx.roots.dkmsTree,
    source_tree: ctx.roots.sourceTree,
    install_tree: ctx.roots.installTree,
    module: m.module,
    module_version: m.version,
    parallel_jobs: String(d.jobsPerMake),
    build_dir: d.kbuild,
  });
  const redirect = (cmd: string) => redirectBuildDir(cmd, d.dkmsBuild, d.kbuild);
  // Debug info (and so the linker's build-id, which stays after stripping)
  // would otherwise embed this run's scratch path. It is mapped to the
  // directory dkms 3.0.10 builds in on a standard system
  // (/var/lib/dkms/<m>/<v>/build): the bytes are then independent of where
  // the tree lives (bundles are reproducible) and the same as dkms's own
  // build of the same source for the same kernel (a module moves between
  // the two tools unchanged).
  const kcflags = [d.env.KCFLAGS, `-ffile-prefix-map=${d.kbuild}=/var/lib/dkms/${m.module}/${m.version}/build`].filter(Boolean).join(' ');
  const opts = { cwd: d.kbuild, env: { ...d.env, KCFLAGS: kcflags } };

  let code = await d.log.step('Copying source', `cp -a ${shellQuote(d.source)}/. ${shellQuote(d.kbuild)}/`, `cp -a ${d.source}/. ${d.kbuild}/`, { cwd: d.kbuild });
  if (code !== 0) await fail(`Could not copy the module source from ${d.source}.`, ExitCode.General);

  for (const patch of conf.patches) {
    if (!existsSync(join(d.kbuild, 'patches', patch))) {
      await fail(`Patch ${patch} as specified in dkms.conf cannot be found in ${join(d.kbuild, 'patches')}/.`, ExitCode.AllNotAllowed);
    }
    code = await d.log.step(`Applying patch ${patch}`, `patch -p1 < ./patches/${shellQuote(patch)}`, `patch -p1 < ./patches/${patch}`, opts);
    if (code !== 0) await fail(`Application of patch ${patch} failed for kernel ${t.kernel} (${t.arch}).`, ExitCode.InstallFailed);
  }

  const script = async (what: string, value: string | null) => {
    if (!value) return;
    // DKMS runs these as "<build dir>/<script> args", word-split, not eval'd.
    const cmd = redirect(value);
    const c = await d.log.step(`Running the ${what} script`, `${vars}\nset -- ${cmd}\nexec "${d.kbuild}/$1" "\${@:2}"`, `${d.kbuild}/${cmd}`, opts);
    if (c !== 0) await fail(`The ${what} script ${value} failed (exit ${c}) for kernel ${t.kernel} (${t.arch}).`, ExitCode.MakeFailed);
  };
  await script('pre-build', conf.preBuild);

  // CLEAN failures are ignored, as in DKMS.
  const clean = redirect(conf.clean);
  await d.log.step('Cleaning build area', `${vars}\neval ${shellQuote(clean)}`, clean, opts);

  const make = injectMakeFlags(redirect(conf.make), d.jobsPerMake, t.kernel);
  code = await d.log.step('Building module(s)', `${vars}\neval ${shellQuote(make)}`, make, opts);
  if (code !== 0) await fail(`Bad return status for module build on kernel: ${t.kernel} (${t.arch})`, ExitCode.MakeFailed);

  for (let i = 0; i < conf.modules.length; i++) {
    const p = builtPath(conf, i);
    if (!existsSync(join(d.kbuild, p))) {
      await fail(
        `Build of ${p} failed for: ${t.kernel} (${t.arch}): make succeeded but did not produce it (check BUILT_MODULE_NAME/BUILT_MODULE_LOCATION).`,
        ExitCode.BuiltModuleMissing,
      );
    }
  }
  await script('post-build', conf.postBuild);
}
