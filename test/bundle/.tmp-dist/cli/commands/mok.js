import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { generateMok } from '../../sign/keys.js';
import { addCommonOptions, contextFrom } from '../options.js';
export function registerMok(program, run) {
    addCommonOptions(program.command('generate_mok').description('create the module signing key and certificate (mok.key, mok.pub) if missing, as DKMS 3.1+ does')).action(run(async (_p, o) => {
        const ctx = await contextFrom(o);
        const key = ctx.framework.mokSigningKey ?? join(ctx.roots.dkmsTree, 'mok.key');
        const cert = ctx.framework.mokCertificate ?? join(ctx.roots.dkmsTree, 'mok.pub');
        if (existsSync(key) && existsSync(cert)) {
            ctx.say(`Signing key: ${key}\nPublic certificate (MOK): ${cert}\n(both exist; nothing to do)`);
            return 0;
        }
        await generateMok(key, cert);
        ctx.say(`Signing key: ${key}\nPublic certificate (MOK): ${cert}`);
        return 0;
    }));
}
