/**
 * build for several kernels at once. DKMS builds one kernel after another
 * (and 3.0.10's `build -k A -k B` builds only A); kbundle schedules them
 * concurrently within the -j budget and reports every kernel's outcome.
 */
import { buildTarget, isBuilt } from '../build/build-target.js';
import { runPool, scheduleBuilds } from '../build/plan.js';
import { unbuildTarget } from '../install/install.js';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';
export function asKbundleError(e) {
    if (e instanceof KbundleError)
        return e;
    return new KbundleError(e?.message ?? String(e), ExitCode.General);
}
export async function buildMany(ctx, m, targets) {
    if (ctx.force) {
        for (const t of targets)
            if (await isBuilt(ctx, m, t))
                await unbuildTarget(ctx, m, t);
    }
    const { concurrency, jobsPerMake } = scheduleBuilds(targets.length, ctx.jobs);
    return runPool(targets, concurrency, async (target) => {
        try {
            return { target, result: await buildTarget(ctx, m, target, jobsPerMake), error: null };
        }
        catch (e) {
            return { target, result: null, error: asKbundleError(e) };
        }
    });
}
/**
 * One exit code for a multi-kernel run: the first real failure wins; a run
 * whose only problems are BUILD_EXCLUSIVE skips exits 77, as DKMS does.
 */
export function combinedExitCode(outcomes) {
    const errors = outcomes.map((o) => o.error).filter((e) => e !== null);
    const real = errors.find((e) => e.exitCode !== ExitCode.Excluded);
    if (real)
        return real.exitCode;
    return errors.length ? ExitCode.Excluded : ExitCode.Ok;
}
