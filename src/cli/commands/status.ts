/**
 * status: DKMS 3.x lines, or --json. Reads the tree only; a kernel dir built
 * by real dkms (no kbundle record) needs its dkms.conf's layout for the
 * "diff between built and installed" check, as DKMS does. Those layouts are
 * resolved together, each distinct conf evaluated once and remembered when
 * that is sound (src/tree/layout-cache.ts).
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { journalPath } from '../../recovery/journal.js';
import { lockPath } from '../../recovery/tree-lock.js';
import { confContext, installedLocation } from '../../lifecycle/context.js';
import { ConfLayoutResolver, layoutCacheDir } from '../../tree/layout-cache.js';
import { formatStatusLine, scanStatusBatch, type LayoutRequest, type ModuleLayout, type StatusEntry, type StatusFilter } from '../../tree/scan.js';
import type { RunContext } from '../../lifecycle/context.js';
import { addCommonOptions, contextFrom, moduleFrom, type CommonOptions } from '../options.js';
import { pairKernelsArches } from '../argv.js';

/**
 * The entries `status` prints, for each filter in turn. Layouts of dkms-built
 * kernel dirs are resolved together, each distinct conf evaluated once.
 */
export async function statusEntries(ctx: RunContext, filters: StatusFilter[], verbose = false): Promise<StatusEntry[]> {
  // --no-cache: evaluate every conf, remember nothing.
  const resolver = new ConfLayoutResolver({ cacheDir: ctx.noCache ? null : layoutCacheDir(ctx.cacheDir) });
  const layouts = async (reqs: LayoutRequest[]): Promise<(ModuleLayout[] | null)[]> => {
    const got = await resolver.resolve(reqs.map((r) => confContext(ctx, r.m, r.t)));
    return got.map((g) =>
      'modules' in g ? g.modules.map((s) => ({ destName: s.destName, installedLocation: installedLocation(ctx, s.destLocation), confLocation: s.destLocation })) : null,
    );
  };
  const entries: StatusEntry[] = [];
  for (const f of filters) entries.push(...(await scanStatusBatch(ctx.roots, f, layouts)));
  if (verbose) {
    const s = resolver.stats;
    process.stderr.write(`conf layouts: ${s.remembered} remembered, ${s.evaluated} evaluated (static), ${s.dynamic} evaluated (dynamic)\n`);
  }
  return entries;
}

export async function status(positional: string[], o: CommonOptions): Promise<number> {
  const ctx = await contextFrom({ ...o, quiet: true });
  // An interrupted command is finished (or rolled back) first, so status never shows a half state.
  if (existsSync(journalPath(ctx.roots.dkmsTree)) || existsSync(lockPath(ctx.roots.dkmsTree))) {
    const { settleForReader } = await import('../../recovery/recover.js');
    await settleForReader({ ...ctx, quiet: false, say: (l) => process.stderr.write(`${l}\n`) });
  }
  const { module, version } = moduleFrom(o, positional);
  const pairs = o.kernelver.length ? pairKernelsArches(o.kernelver, o.arch, '', '') : null;
  const filters = typeof pairs === 'object' && pairs ? pairs.map((p) => ({ kernel: p.kernel, arch: p.arch || undefined })) : [{ kernel: undefined, arch: o.arch[0] }];
  const entries = await statusEntries(ctx, filters.map((f) => ({ module, version, kernel: f.kernel, arch: f.arch })), Boolean(o.verbose));
  if (o.json) {
    const rows = entries.map((e) => ({ module: e.module, version: e.version, kernel: e.kernel, arch: e.arch, state: e.state }));
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
  } else {
    for (const e of entries) process.stdout.write(`${formatStatusLine(e)}\n`);
  }
  return 0;
}

export function registerStatus(program: Command, run: (a: (p: string[], o: CommonOptions) => Promise<number>) => (...args: unknown[]) => Promise<void>): void {
  addCommonOptions(
    program.command('status').description('show added/built/installed modules as DKMS prints them (--json for scripts)').argument('[module]', 'M or M/V'),
  ).action(run(status));
}
