import type { Command } from 'commander';
import { mktarball } from '../../dkms-tarball/mktarball.js';
import { ldtarball } from '../../dkms-tarball/ldtarball.js';
import { scanStatus } from '../../tree/scan.js';
import { KbundleError } from '../../util/errors.js';
import { ExitCode } from '../../util/exit-codes.js';
import { requireAdded } from '../../lifecycle/add.js';
import { addCommonOptions, contextFrom, locked, requireModule, targetsFrom, type CommonOptions } from '../options.js';

type Runner = (a: (p: string[], o: CommonOptions) => Promise<number>) => (...args: unknown[]) => Promise<void>;
type TarOptions = CommonOptions & { archive?: string; sourceOnly?: boolean; binariesOnly?: boolean };

export function registerTarball(program: Command, run: Runner): void {
  addCommonOptions(
    program
      .command('mktarball')
      .description('archive a module (source and/or built binaries for the kernels) in DKMS\'s tarball layout, reproducibly')
      .argument('[module]', 'M/V')
      .option('--archive <file>', 'output file (default <dkmstree>/<m>/<v>/tarball/<name>.dkms.tar.gz)')
      .option('--source-only', 'source only, no binaries')
      .option('--binaries-only', 'binaries and dkms.conf only, no source'),
  ).action(
    run(locked('mktarball', async (p, o: TarOptions) => {
      const ctx = await contextFrom(o);
      const m = requireModule(o, p);
      await requireAdded(ctx, m);
      let targets = o.sourceOnly ? [] : targetsFrom(o);
      if (o.all) {
        if (o.kernelver.length) throw new KbundleError('You cannot specify a kernel version and also specify --all on the command line.', ExitCode.Usage);
        const entries = await scanStatus(ctx.roots, { module: m.module, version: m.version }, async () => null);
        targets = entries.filter((e) => e.kernel).map((e) => ({ kernel: e.kernel!, arch: e.arch! }));
      }
      const out = await mktarball(ctx, m, { targets, sourceOnly: Boolean(o.sourceOnly), binariesOnly: Boolean(o.binariesOnly), archive: o.archive });
      ctx.say(`Tarball location: ${out}`);
      return 0;
    })),
  );
  addCommonOptions(
    program
      .command('ldtarball')
      .description('load a DKMS tarball (from kbundle or dkms): source into the source tree, binaries for every kernel into the DKMS tree')
      .argument('[archive]', 'the .dkms.tar.gz (or --archive)')
      .option('--archive <file>', 'the tarball to load'),
  ).action(
    run(locked('ldtarball', async (p, o: TarOptions) => {
      const archive = o.archive ?? p[0];
      if (!archive) throw new KbundleError('ldtarball needs an archive: kbundle ldtarball FILE (or --archive FILE).', ExitCode.Usage);
      const [t] = targetsFrom(o);
      const ctx = await contextFrom(o, t!.kernel);
      const r = await ldtarball(ctx, archive, t!);
      if (o.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      return 0;
    })),
  );
}
