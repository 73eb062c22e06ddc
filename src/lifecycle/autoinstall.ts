/**
 * autoinstall: for each module in the tree, its newest added version with
 * AUTOINSTALL=yes gets built and installed for the kernel(s). DKMS does this
 * strictly one module at a time; kbundle builds every (module, kernel) pair
 * of a BUILD_DEPENDS layer concurrently, then installs in dependency order.
 */
import { readdir } from 'node:fs/promises';
import { buildTarget, isBuilt } from '../build/build-target.js';
import { runPool, scheduleBuilds } from '../build/plan.js';
import { installTarget } from '../install/install.js';
import { isInstalled, addedState } from '../tree/scan.js';
import type { ModuleRef, Target } from '../tree/paths.js';
import { ExitCode } from '../util/exit-codes.js';
import { asKbundleError } from './build.js';
import { evaluateFor, type RunContext } from './context.js';
import { compareVersions } from './versions.js';

export interface AutoinstallResult {
  kernel: string;
  arch: string;
  succeeded: string[];
  skipped: string[];
  failed: Array<{ module: string; code: number }>;
}

interface Candidate {
  m: ModuleRef;
  t: Target;
  depends: string[];
}

/** Newest added version of every module in the tree. */
export async function newestModules(ctx: RunContext): Promise<ModuleRef[]> {
  const out: ModuleRef[] = [];
  const names = (await readdir(ctx.roots.dkmsTree).catch(() => [] as string[])).filter((n) => !n.startsWith('.')).sort();
  for (const module of names) {
    const versions: string[] = [];
    for (const v of await readdir(`${ctx.roots.dkmsTree}/${module}`).catch(() => [] as string[])) {
      if ((await addedState(ctx.roots, { module, version: v })) === 'added') versions.push(v);
    }
    versions.sort(compareVersions);
    const newest = versions.at(-1);
    if (newest) out.push({ module, version: newest });
  }
  return out;
}

/** Splits candidates into layers so that BUILD_DEPENDS come in an earlier layer. */
export function dependencyLayers<T extends { m: ModuleRef; depends: string[] }>(items: T[]): T[][] {
  const layers: T[][] = [];
  const placed = new Set<string>();
  let rest = [...items];
  const known = new Set(items.map((i) => i.m.module));
  while (rest.length) {
    const ready = rest.filter((i) => i.depends.every((d) => placed.has(d) || !known.has(d)));
    // A dependency cycle: build the rest together rather than never.
    const layer = ready.length ? ready : rest;
    layers.push(layer);
    for (const i of layer) placed.add(i.m.module);
    rest = rest.filter((i) => !layer.includes(i));
  }
  return layers;
}

export async function autoinstall(ctx: RunContext, targets: Target[]): Promise<{ code: number; results: AutoinstallResult[] }> {
  const results = new Map<string, AutoinstallResult>();
  const resultFor = (t: Target) => {
    const k = `${t.kernel}/${t.arch}`;
    if (!results.has(k)) results.set(k, { kernel: t.kernel, arch: t.arch, succeeded: [], skipped: [], failed: [] });
    return results.get(k)!;
  };
  const candidates: Candidate[] = [];
  for (const m of await newestModules(ctx)) {
    for (const t of targets) {
      resultFor(t);
      if (await isInstalled(ctx.roots, m, t)) continue;
      try {
        const conf = await evaluateFor(ctx, m, t);
        if (!conf.autoinstall) continue;
        candidates.push({ m, t, depends: conf.buildDepends });
      } catch (e) {
        resultFor(t).failed.push({ module: `${m.module}/${m.version}`, code: asKbundleError(e).exitCode });
      }
    }
  }
  for (const layer of dependencyLayers(candidates)) {
    const toBuild: Candidate[] = [];
    for (const c of layer) if (!(await isBuilt(ctx, c.m, c.t))) toBuild.push(c);
    const { concurrency, jobsPerMake } = scheduleBuilds(toBuild.length, ctx.jobs);
    const buildErrors = new Map<Candidate, number>();
    await runPool(toBuild, concurrency, async (c) => {
      try {
        await buildTarget(ctx, c.m, c.t, jobsPerMake);
      } catch (e) {
        const err = asKbundleError(e);
        buildErrors.set(c, err.exitCode);
        if (err.exitCode !== ExitCode.Excluded) process.stderr.write(`Error! ${err.message}\n${err.details.join('\n')}\n`);
      }
    });
    for (const c of layer) {
      const name = `${c.m.module}/${c.m.version}`;
      const code = buildErrors.get(c);
      if (code === ExitCode.Excluded) {
        resultFor(c.t).skipped.push(name);
        continue;
      }
      if (code !== undefined) {
        resultFor(c.t).failed.push({ module: name, code });
        continue;
      }
      try {
        await installTarget(ctx, c.m, c.t);
        resultFor(c.t).succeeded.push(name);
      } catch (e) {
        const err = asKbundleError(e);
        process.stderr.write(`Error! ${err.message}\n`);
        resultFor(c.t).failed.push({ module: name, code: err.exitCode });
      }
    }
  }
  const list = [...results.values()];
  for (const r of list) {
    if (r.succeeded.length) ctx.say(`Autoinstall on ${r.kernel} succeeded for module(s) ${r.succeeded.join(' ')}.`);
    if (r.skipped.length) ctx.say(`Autoinstall on ${r.kernel} was skipped for module(s) ${r.skipped.join(' ')}.`);
    if (r.failed.length) process.stderr.write(`Error! Autoinstall on ${r.kernel} failed for module(s) ${r.failed.map((f) => `${f.module}(${f.code})`).join(' ')}.\n`);
  }
  const failed = list.some((r) => r.failed.length);
  return { code: failed ? ExitCode.AutoinstallFailed : ExitCode.Ok, results: list };
}

/** match: install on `target` every module installed on `template`. */
export async function matchKernels(ctx: RunContext, template: Target, target: Target, only?: string): Promise<Array<{ m: ModuleRef; error: number | null }>> {
  const out: Array<{ m: ModuleRef; error: number | null }> = [];
  const names = (await readdir(ctx.roots.dkmsTree).catch(() => [] as string[])).filter((n) => !n.startsWith('.') && (!only || n === only)).sort();
  for (const module of names) {
    for (const version of await readdir(`${ctx.roots.dkmsTree}/${module}`).catch(() => [] as string[])) {
      const m = { module, version };
      if (!(await isInstalled(ctx.roots, m, template))) continue;
      try {
        if (!(await isBuilt(ctx, m, target))) await buildTarget(ctx, m, target, ctx.jobs);
        await installTarget(ctx, m, target);
        out.push({ m, error: null });
      } catch (e) {
        const err = asKbundleError(e);
        process.stderr.write(`Error! ${err.message}\n`);
        out.push({ m, error: err.exitCode });
      }
    }
  }
  return out;
}
