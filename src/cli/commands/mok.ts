import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { addCommonOptions, contextFrom, type CommonOptions } from '../options.js';

type Runner = (a: (p: string[], o: CommonOptions) => Promise<number>) => (...args: unknown[]) => Promise<void>;

export function registerMok(program: Command, run: Runner): void {
  addCommonOptions(
    program.command('generate_mok').description('create the module signing key and certificate (mok.key, mok.pub) if missing, as DKMS 3.1+ does'),
  ).action(
    run(async (_p, o) => {
      const ctx = await contextFrom(o);
      const key = ctx.framework.mokSigningKey ?? join(ctx.roots.dkmsTree, 'mok.key');
      const cert = ctx.framework.mokCertificate ?? join(ctx.roots.dkmsTree, 'mok.pub');
      if (existsSync(key) && existsSync(cert)) {
        ctx.say(`Signing key: ${key}\nPublic certificate (MOK): ${cert}\n(both exist; nothing to do)`);
        return 0;
      }
      const { generateMok } = await import('../../sign/keys.js');
      await generateMok(key, cert);
      ctx.say(`Signing key: ${key}\nPublic certificate (MOK): ${cert}`);
      return 0;
    }),
  );
}
