/**
 * Which files a built (module, kernel, arch) consists of and where each one
 * installs. kbundle's build record answers without running bash; a kernel dir
 * built by real dkms has none, so its dkms.conf is evaluated instead.
 */
import { basename, join } from 'node:path';
import { evaluateFor, installedLocation, type RunContext } from '../lifecycle/context.js';
import { builtModulesDir, kernelArchDir, type ModuleRef, type Target } from '../tree/paths.js';
import { BUILD_RECORD, readJsonRecord, type BuildRecord } from '../tree/records.js';
import { findModuleFile } from '../tree/scan.js';

export interface PlacedModule {
  destName: string;
  /** Built file in <k>/<a>/module/. */
  builtFile: string;
  /** Directory under the install tree, e.g. <installTree>/<k>/updates/dkms. */
  installDir: string;
  /** Final installed path (same file name as the built one, compression included). */
  installPath: string;
}

export async function placedModules(ctx: RunContext, m: ModuleRef, t: Target): Promise<PlacedModule[]> {
  const mdir = builtModulesDir(ctx.roots, m, t);
  const record = await readJsonRecord<BuildRecord>(join(kernelArchDir(ctx.roots, m, t), BUILD_RECORD));
  const entries: Array<{ destName: string; destLocation: string; builtFile: string | null }> = record
    ? record.modules.map((r) => ({ destName: r.destName, destLocation: r.destLocation, builtFile: join(mdir, r.file) }))
    : await Promise.all(
        (await evaluateFor(ctx, m, t)).modules.map(async (s) => ({
          destName: s.destName,
          destLocation: s.destLocation,
          builtFile: await findModuleFile(mdir, s.destName),
        })),
      );
  return entries.map((e) => {
    if (!e.builtFile) throw new Error(`built module ${e.destName} is missing from ${mdir}`);
    const installDir = join(ctx.roots.installTree, t.kernel + installedLocation(ctx, e.destLocation));
    return { destName: e.destName, builtFile: e.builtFile, installDir, installPath: join(installDir, basename(e.builtFile)) };
  });
}
