import { evaluateFor, installedLocation } from '../../lifecycle/context.js';
import { formatStatusLine, scanStatus } from '../../tree/scan.js';
import { addCommonOptions, contextFrom, moduleFrom } from '../options.js';
import { pairKernelsArches } from '../argv.js';
export async function status(positional, o) {
    const ctx = await contextFrom({ ...o, quiet: true });
    const { module, version } = moduleFrom(o, positional);
    const pairs = o.kernelver.length ? pairKernelsArches(o.kernelver, o.arch, '', '') : null;
    const filters = typeof pairs === 'object' && pairs ? pairs.map((p) => ({ kernel: p.kernel, arch: p.arch || undefined })) : [{ kernel: undefined, arch: o.arch[0] }];
    const entries = [];
    for (const f of filters) {
        entries.push(...(await scanStatus(ctx.roots, { module, version, kernel: f.kernel, arch: f.arch }, async (m, t) => {
            try {
                const conf = await evaluateFor(ctx, m, t);
                return conf.modules.map((s) => ({ destName: s.destName, installedLocation: installedLocation(ctx, s.destLocation) }));
            }
            catch {
                return null;
            }
        })));
    }
    if (o.json) {
        const rows = entries.map((e) => ({ module: e.module, version: e.version, kernel: e.kernel, arch: e.arch, state: e.state }));
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    }
    else {
        for (const e of entries)
            process.stdout.write(`${formatStatusLine(e)}\n`);
    }
    return 0;
}
export function registerStatus(program, run) {
    addCommonOptions(program.command('status').description('show added/built/installed modules as DKMS prints them (--json for scripts)').argument('[module]', 'M or M/V')).action(run(status));
}
