/** The kbundle command line: DKMS's actions plus kbundle's own. */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';
import { normalizeArgv } from './argv.js';
import { registerAutoinstall } from './commands/autoinstall.js';
import { registerConf } from './commands/conf.js';
import { registerLifecycle } from './commands/lifecycle.js';
import { registerMok } from './commands/mok.js';
import { registerStatus } from './commands/status.js';
import { registerTarball } from './commands/tarball.js';
import { registerBundle } from './commands/bundle.js';
import { registerBundleInstall } from './commands/bundle-install.js';
import type { CommonOptions } from './options.js';
import { printError } from './report.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** The dkms release whose behaviour kbundle reproduces (Debian 12's dkms 3.0.10-8+deb12u1). */
export const DKMS_COMPATIBLE = '3.0.10';

/**
 * `dkms --version` prints one line, `dkms-3.0.10` (/usr/sbin/dkms, the
 * --version|-V case). kbundle mirrors that `<name>-<version>` form. Installed
 * under the name `dkms`, its first line is exactly dkms's, because scripts
 * parse it (e.g. `sed -n 's/^dkms-\(.*\)$/\1/p'`) to decide whether dkms is
 * new enough.
 */
export function versionText(invokedAs: string | undefined): string {
  const own = `kbundle-${pkg.version} (compatible with dkms-${DKMS_COMPATIBLE})`;
  return invokedAs && basename(invokedAs) === 'dkms' ? `dkms-${DKMS_COMPATIBLE}\n${own}` : own;
}

/** Nested command groups: their sub-command moves to the front along with them. */
const NESTED = new Set(['bundle']);

export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const program = new Command('kbundle')
    .description('DKMS-compatible kernel module builder with reproducible, signed offline bundles')
    .version(versionText(argv[1]), '-V, --version')
    .showHelpAfterError()
    .exitOverride();
  const run =
    (fn: (positional: string[], o: CommonOptions) => Promise<number>) =>
    async (...args: unknown[]): Promise<void> => {
      const cmd = args[args.length - 1] as Command;
      exitCode = await fn(cmd.args, cmd.opts() as CommonOptions);
    };
  program
    .command('version')
    .description('print the kbundle version and the dkms version it is compatible with')
    .action(() => void process.stdout.write(`${versionText(argv[1])}\n`));
  registerLifecycle(program, run);
  registerStatus(program, run);
  registerAutoinstall(program, run);
  registerConf(program, run);
  registerMok(program, run);
  registerTarball(program, run);
  registerBundleInstall(registerBundle(program, run), run);

  const names = new Set(program.commands.flatMap((c) => [c.name(), ...c.aliases()]));
  const args = normalizeArgv(argv.slice(2), names, NESTED);
  try {
    await program.parseAsync(args, { from: 'user' });
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help / --version exit 0; usage errors are DKMS's exit 2 (unknown option).
      return e.exitCode === 0 ? 0 : ExitCode.Usage;
    }
    if (e instanceof KbundleError) {
      printError(e);
      return e.exitCode;
    }
    process.stderr.write(`Error! ${(e as Error)?.stack ?? String(e)}\n`);
    return ExitCode.General;
  }
}
