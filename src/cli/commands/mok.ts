import type { Command } from 'commander';
import { defaultMokPaths, ensureMok } from '../../build/signing.js';
import { addCommonOptions, contextFrom, locked, type CommonOptions } from '../options.js';

type Runner = (a: (p: string[], o: CommonOptions) => Promise<number>) => (...args: unknown[]) => Promise<void>;

export function registerMok(program: Command, run: Runner): void {
  addCommonOptions(
    program.command('generate_mok').description('create the module signing key and certificate (mok.key, mok.pub) if missing, as DKMS does before signing'),
  ).action(
    // Locked: a build on the same tree may be generating the same default pair.
    run(
      locked('generate_mok', async (_p, o) => {
        const ctx = await contextFrom(o);
        const defaults = defaultMokPaths(ctx.roots.dkmsTree);
        const key = ctx.framework.mokSigningKey ?? defaults.key;
        const cert = ctx.framework.mokCertificate ?? defaults.cert;
        const generated = await ensureMok(key, cert, ctx.say);
        ctx.say(`Signing key: ${key}\nPublic certificate (MOK): ${cert}${generated ? '' : '\n(both exist; nothing to do)'}`);
        return 0;
      }),
    ),
  );
}
