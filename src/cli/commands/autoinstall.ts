import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { autoinstall, matchKernels } from '../../lifecycle/autoinstall.js';
import { KbundleError } from '../../util/errors.js';
import { ExitCode } from '../../util/exit-codes.js';
import { addCommonOptions, contextFrom, locked, targetsFrom, type CommonOptions } from '../options.js';
import { pairKernelsArches } from '../argv.js';
import { machine } from 'node:os';

type Runner = (a: (p: string[], o: CommonOptions) => Promise<number>) => (...args: unknown[]) => Promise<void>;

export function registerAutoinstall(program: Command, run: Runner): void {
  addCommonOptions(program.command('autoinstall').description('build and install every AUTOINSTALL=yes module for the kernel(s); usable as a kernel postinst hook')).action(
    run(locked('autoinstall', async (_p, o) => {
      const targets = targetsFrom(o);
      const ctx = await contextFrom(o, targets[0]!.kernel);
      if (existsSync(join(ctx.etcDir, 'no-autoinstall'))) {
        ctx.say('Automatic installation of modules has been disabled.');
        return 0;
      }
      // Stored bundles first (offline, prebuilt where one fits): what they install, the DKMS pass below then skips.
      const { autoinstallFromBundles } = await import('../../deploy/deploy.js');
      const fromBundles = await autoinstallFromBundles(ctx, '/', targets, 600_000);
      for (const i of fromBundles.installed) ctx.say(`Installed from a stored bundle: ${i}`);
      const code = (await autoinstall(ctx, targets)).code;
      return fromBundles.failed.length && code === 0 ? ExitCode.AutoinstallFailed : code;
    })),
  );

  addCommonOptions(
    program
      .command('match')
      .description('install on -k KERNEL every module installed on --templatekernel')
      .requiredOption('--templatekernel <kernel>', 'the kernel whose installed modules to copy')
      .argument('[module]', 'only this module'),
  ).action(
    run(locked('match', async (p, o) => {
      const opts = o as CommonOptions & { templatekernel: string };
      if (o.kernelver.length !== 1) throw new KbundleError('match needs exactly one -k (the kernel to install onto).', ExitCode.General);
      const [target] = targetsFrom(o);
      if (opts.templatekernel === target!.kernel) throw new KbundleError('The templatekernel and the specified kernel version are the same.', ExitCode.Usage);
      const tmpl = pairKernelsArches([opts.templatekernel], o.arch, '', machine());
      const ctx = await contextFrom(o, target!.kernel);
      const results = await matchKernels(ctx, (tmpl as Array<{ kernel: string; arch: string }>)[0]!, target!, p[0]);
      return results.some((r) => r.error !== null) ? ExitCode.AutoinstallFailed : 0;
    })),
  );
}
