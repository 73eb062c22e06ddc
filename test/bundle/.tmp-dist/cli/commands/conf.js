import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { confToJson, confToText } from '../../conf/format.js';
import { loadConf } from '../../conf/load.js';
import { confContext } from '../../lifecycle/context.js';
import { sourceDir, sourceLink } from '../../tree/paths.js';
import { KbundleError } from '../../util/errors.js';
import { ExitCode } from '../../util/exit-codes.js';
import { addCommonOptions, contextFrom, requireModule, targetsFrom } from '../options.js';
export async function conf(positional, o) {
    const [target] = targetsFrom(o);
    const ctx = await contextFrom({ ...o, quiet: true }, target.kernel);
    const word = positional[0];
    let confPath;
    let m = { module: '', version: '' };
    if (!o.module && word && existsSync(word)) {
        confPath = statSync(word).isDirectory() ? join(resolve(word), 'dkms.conf') : resolve(word);
    }
    else {
        m = requireModule(o, positional);
        const linked = join(sourceLink(ctx.roots, m), 'dkms.conf');
        confPath = existsSync(linked) ? linked : join(sourceDir(ctx.roots, m), 'dkms.conf');
    }
    if (!existsSync(confPath))
        throw new KbundleError(`dkms.conf not found: ${confPath}`, ExitCode.BadAction);
    const c = confContext(ctx, m, target, ctx.confOverride ?? confPath);
    const evaluated = await loadConf(m.module ? c : { ...c, module: undefined, moduleVersion: undefined });
    process.stdout.write(o.json ? `${JSON.stringify(confToJson(evaluated), null, 2)}\n` : confToText(evaluated));
    return 0;
}
export function registerConf(program, run) {
    addCommonOptions(program.command('conf').description('show how a dkms.conf evaluates for one kernel (-k) and arch (-a)').argument('<dir|module/version>', 'a source dir (or dkms.conf), or M/V')).action(run(conf));
}
