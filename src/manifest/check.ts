/**
 * `kbundle bundle check`: everything `bundle build` decides before its first
 * make, without building. The manifest, its kernel patterns against the
 * installed headers, the arches, the keys it names, and each source's
 * dkms.conf evaluated for every kernel x arch, so a CI job can fail in
 * seconds on what would otherwise fail an hour into a build.
 */
import { existsSync, statSync } from 'node:fs';
import { pairManifestKernels } from '../arch/manifest-pairs.js';
import { crossMakeEnv } from '../arch/toolchain.js';
import { dirname, join } from 'node:path';
import { loadConf } from '../conf/load.js';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';
import { resolveKernelTargets } from './kernels.js';
import { loadManifest } from './load.js';
import type { Manifest, ResolvedKernel } from './types.js';

export interface PlannedBuild {
  module: string;
  version: string;
  source: string;
  kernel: string;
  arch: string;
  headers: string;
  /** BUILD_EXCLUSIVE_* reasons; non-empty means `bundle build` would stop at this target. */
  excluded: string[];
}

export interface CheckResult {
  manifest: string;
  /** False when a target is excluded by its dkms.conf. */
  ok: boolean;
  name: string;
  version: string;
  output: string;
  kernels: { pattern: string; releases: string[] }[];
  arches: string[];
  builds: PlannedBuild[];
}

/** Resolution errors carry no file; here they name the manifest. */
function inManifest(file: string, fn: () => ResolvedKernel[]): ResolvedKernel[] {
  try {
    return fn();
  } catch (e) {
    if (e instanceof KbundleError) throw new KbundleError(`${file}: ${e.message}`, e.exitCode, e.details);
    throw e;
  }
}

function requireKey(m: Manifest, path: string | undefined, what: string): void {
  // The same refusals, codes and wording as bundle build.
  if (!path) throw new KbundleError(`${m.file}: kbundle.yaml has no ${what}; every module in a bundle is signed and the bundle index is signed.`, ExitCode.BadManifest);
  if (!existsSync(path)) throw new KbundleError(`${m.file}: ${what} ${path} does not exist.`, ExitCode.BadKey);
}

export async function checkManifest(path: string, headerRoots: string[] = ['/lib/modules']): Promise<CheckResult> {
  const m = await loadManifest(path);
  const kernels = m.kernels.map((k) => ({
    pattern: k.pattern,
    releases: inManifest(m.file, () => resolveKernelTargets([k], headerRoots)).map((r) => r.release),
  }));
  const targets = inManifest(m.file, () => resolveKernelTargets(m.kernels, headerRoots));
  const pairs = pairManifestKernels(m, targets);
  const paired = new Set(pairs.map((x) => `${x.kernel}\0${x.arch}`));
  // A cross build's compiler is checked here too, not an hour into the build (exit 81).
  for (const a of new Set(pairs.map((x) => x.arch))) crossMakeEnv(a);
  requireKey(m, m.signing?.moduleKey, 'signing.moduleKey');
  requireKey(m, m.signing?.moduleCert, 'signing.moduleCert');
  requireKey(m, m.bundleKey, 'bundleKey');

  const builds: PlannedBuild[] = [];
  for (const source of m.sources) {
    const confPath = join(source, 'dkms.conf');
    if (!existsSync(confPath) || !statSync(confPath).isFile()) {
      throw new KbundleError(`${m.file}: source ${source} has no dkms.conf.`, ExitCode.BadManifest);
    }
    for (const t of targets) {
      for (const arch of m.arches) {
        if (!paired.has(`${t.release}\0${arch}`)) continue;
        const conf = await loadConf({
          confPath,
          kernelver: t.release,
          arch,
          kernelSourceDir: t.headers,
          dkmsTree: '/var/lib/dkms',
          sourceTree: '/usr/src',
          installTree: '/lib/modules',
          parallelJobs: 1,
        });
        builds.push({ module: conf.name, version: conf.version, source, kernel: t.release, arch, headers: t.headers, excluded: conf.excludeReasons });
      }
    }
  }
  const name = m.name ?? builds[0]!.module;
  const version = m.version ?? builds[0]!.version;
  return {
    manifest: m.file,
    ok: builds.every((b) => b.excluded.length === 0),
    name,
    version,
    output: m.output ?? join(dirname(m.file), `${name}-${version}.kbundle`),
    kernels,
    arches: m.arches,
    builds,
  };
}

/** Exit code for a result: 77 (DKMS's "skipped") when a target is excluded, as its build would be. */
export function checkExitCode(r: CheckResult): number {
  return r.ok ? ExitCode.Ok : ExitCode.Excluded;
}

export function checkToText(r: CheckResult): string {
  const out: string[] = [];
  const excluded = r.builds.filter((b) => b.excluded.length);
  out.push(`${r.manifest}: ${r.ok ? 'OK' : `${excluded.length} target(s) excluded by dkms.conf; bundle build stops there unless --keep-going`}`);
  out.push(`bundle ${r.name} ${r.version} -> ${r.output}`);
  for (const k of r.kernels) out.push(`kernel ${k.pattern}: ${k.releases.join(', ')}`);
  const header = ['MODULE', 'VERSION', 'KERNEL', 'ARCH', 'HEADERS'];
  const rows = r.builds.map((b) => [b.module, b.version, b.kernel, b.arch, b.headers + (b.excluded.length ? `  EXCLUDED: ${b.excluded.join('; ')}` : '')]);
  const widths = header.map((_, c) => Math.max(...[header, ...rows].map((row) => row[c]!.length)));
  for (const row of [header, ...rows]) out.push(row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  '));
  out.push(`${r.builds.length - excluded.length} build(s) of ${r.builds.length}`);
  return `${out.join('\n')}\n`;
}
