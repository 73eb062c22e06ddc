/**
 * Which files a built (module, kernel, arch) consists of and where each one
 * installs. kbundle's build record answers without running bash; a kernel dir
 * built by real dkms has none, so its dkms.conf is evaluated instead.
 */
import { basename, join } from 'node:path';
import { evaluateFor, installedLocation } from '../lifecycle/context.js';
import { builtModulesDir, kernelArchDir } from '../tree/paths.js';
import { BUILD_RECORD, readJsonRecord } from '../tree/records.js';
import { findModuleFile } from '../tree/scan.js';
export async function placedModules(ctx, m, t) {
    const mdir = builtModulesDir(ctx.roots, m, t);
    const record = await readJsonRecord(join(kernelArchDir(ctx.roots, m, t), BUILD_RECORD));
    const entries = record
        ? record.modules.map((r) => ({ destName: r.destName, destLocation: r.destLocation, builtFile: join(mdir, r.file) }))
        : await Promise.all((await evaluateFor(ctx, m, t)).modules.map(async (s) => ({
            destName: s.destName,
            destLocation: s.destLocation,
            builtFile: await findModuleFile(mdir, s.destName),
        })));
    return entries.map((e) => {
        if (!e.builtFile)
            throw new Error(`built module ${e.destName} is missing from ${mdir}`);
        const installDir = join(ctx.roots.installTree, t.kernel + installedLocation(ctx, e.destLocation));
        return { destName: e.destName, builtFile: e.builtFile, installDir, installPath: join(installDir, basename(e.builtFile)) };
    });
}
