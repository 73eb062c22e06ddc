/**
 * common-postinst: what /usr/lib/dkms/common.postinst runs once the drop-in
 * is installed (src/dropin/common-postinst.ts has the steps). The dkms
 * commands the script would start are called in this process, each printing
 * and exiting as that command does.
 */
import type { Command } from 'commander';
import { machine } from 'node:os';
import { readFrameworkConf } from '../../conf/framework.js';
import { commonPostinst, type DkmsSteps } from '../../dropin/common-postinst.js';
import { buildMany } from '../../lifecycle/build.js';
import { removeTargets } from '../../install/install.js';
import { ldtarball } from '../../dkms-tarball/ldtarball.js';
import { formatStatusLine } from '../../tree/scan.js';
import { KbundleError } from '../../util/errors.js';
import { join } from 'node:path';
import { printError } from '../report.js';
import { addCommonOptions, contextFrom, locked, type CommonOptions } from '../options.js';
import { add, install, remove } from './lifecycle.js';
import { statusEntries } from './status.js';

type Runner = (fn: (positional: string[], o: CommonOptions) => Promise<number>) => (...args: unknown[]) => Promise<void>;

/** Runs a dkms action the way main() would: its exit code, or its error printed and its code. */
async function asCommand(fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof KbundleError)) throw e;
    printError(e);
    return e.exitCode;
  }
}

export function registerCommonPostinst(program: Command, run: Runner): void {
  addCommonOptions(
    program
      .command('common-postinst')
      .description("Debian's /usr/lib/dkms/common.postinst (NAME VERSION TARBALL_ROOT ARCH UPGRADE), kernels built concurrently")
      .argument('[args...]', 'NAME VERSION [TARBALL_ROOT [ARCH [UPGRADE]]]')
      .option('--bootdir <dir>', 'where /boot/config-* are read (default /boot)'),
  ).action(
    run(locked('common-postinst', async (p, o: CommonOptions & { bootdir?: string }) => {
      const [name, version, tarballRoot, arch, upgrade] = p;
      const base: CommonOptions = { ...o, module: undefined, versionOf: undefined, kernelver: [], arch: [] };
      const ctx = await contextFrom(base);
      const quiet = await contextFrom({ ...base, quiet: true });
      const fw = await readFrameworkConf(join(ctx.etcDir, 'framework.conf'));
      const one = (m: { module: string; version: string }, extra: Partial<CommonOptions>): CommonOptions => ({ ...base, module: `${m.module}/${m.version}`, ...extra });
      const steps: DkmsSteps = {
        remove: (m) => asCommand(() => remove([], one(m, { all: true }))),
        ldtarball: (archive) => asCommand(async () => (await ldtarball(ctx, archive, { kernel: '', arch: machine() }), 0)),
        // `dkms add ... > /dev/null`: only errors show.
        add: (m) => asCommand(() => add([], one(m, { quiet: true }))),
        status: async (m, kernel, a) => {
          const entries = await statusEntries(quiet, [{ module: m.module, version: m.version, kernel, arch: a }]);
          return entries.map(formatStatusLine).join(' ');
        },
        install: (m, t) => asCommand(() => install([], one(m, { kernelver: [t.kernel], arch: [t.arch] }))),
        buildAll: (m, targets) => buildMany(quiet, m, targets),
        reportBuildError: (e) => printError(e),
        unbuild: (m, t) => removeTargets(quiet, m, [t], false),
      };
      return commonPostinst(
        { name, version, tarballRoot, arch, upgrade },
        { ctx, etcDir: ctx.etcDir, bootDir: o.bootdir ?? '/boot', autoinstallAllKernels: Boolean(fw.autoinstallAllKernels), hostArch: machine(), out: (l) => process.stdout.write(`${l}\n`) },
        steps,
      );
    })),
  );
}
