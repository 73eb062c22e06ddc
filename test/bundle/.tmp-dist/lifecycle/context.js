/**
 * What every lifecycle command needs: the roots, the options that shape a
 * run, and a way to evaluate a module's dkms.conf for one kernel.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { destLocationForDistro } from '../conf/evaluate.js';
import { loadConf } from '../conf/load.js';
import { sourceLink } from '../tree/paths.js';
/** DKMS's default is <install_tree>/<k>/build; kbundle falls back to the system's headers when a scratch install tree has none. */
export function kernelSourceDirFor(ctx, kernel) {
    if (ctx.kernelSourceDir)
        return ctx.kernelSourceDir;
    const own = join(ctx.roots.installTree, kernel, 'build');
    if (existsSync(own))
        return own;
    return join('/lib/modules', kernel, 'build');
}
export function confContext(ctx, m, t, confPath) {
    return {
        confPath: confPath ?? ctx.confOverride ?? join(sourceLink(ctx.roots, m), 'dkms.conf'),
        kernelver: t.kernel,
        arch: t.arch,
        kernelSourceDir: kernelSourceDirFor(ctx, t.kernel),
        dkmsTree: ctx.roots.dkmsTree,
        sourceTree: ctx.roots.sourceTree,
        installTree: ctx.roots.installTree,
        module: m.module,
        moduleVersion: m.version,
        overridesDir: ctx.etcDir,
        directives: ctx.directives,
        parallelJobs: ctx.jobs,
    };
}
export function evaluateFor(ctx, m, t, confPath) {
    return loadConf(confContext(ctx, m, t, confPath));
}
/** Where a module with this DEST_MODULE_LOCATION lands under <installTree>/<k>. */
export function installedLocation(ctx, destLocation) {
    return ctx.osRelease ? destLocationForDistro(destLocation, ctx.osRelease) : destLocation;
}
