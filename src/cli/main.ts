/** The kbundle command line: DKMS's actions plus kbundle's own. */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';
import { normalizeArgv } from './argv.js';
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
const NESTED = new Set(['bundle', 'dropin', 'headers']);

type Runner = (fn: (positional: string[], o: CommonOptions) => Promise<number>) => (...args: unknown[]) => Promise<void>;
type Register = (program: Command, run: Runner) => void;

/**
 * Each command group and the module that registers it. Only the group a run
 * names is loaded: through a package's postinst kbundle starts once per
 * kernel and step (`dkms status`, `build`, `install`), so start-up is paid
 * many times, and loading every command's dependencies (signing, bundles,
 * YAML, JSON Schema) would be most of a short call's time.
 */
const GROUPS: Array<{ names: string[]; load: () => Promise<Register> }> = [
  { names: ['add', 'build', 'install', 'uninstall', 'unbuild', 'remove'], load: async () => (await import('./commands/lifecycle.js')).registerLifecycle },
  { names: ['status'], load: async () => (await import('./commands/status.js')).registerStatus },
  { names: ['autoinstall', 'match'], load: async () => (await import('./commands/autoinstall.js')).registerAutoinstall },
  { names: ['conf'], load: async () => (await import('./commands/conf.js')).registerConf },
  { names: ['generate_mok'], load: async () => (await import('./commands/mok.js')).registerMok },
  { names: ['mktarball', 'ldtarball'], load: async () => (await import('./commands/tarball.js')).registerTarball },
  { names: ['common-postinst'], load: async () => (await import('./commands/common-postinst.js')).registerCommonPostinst },
  { names: ['mkdeb', 'mkdsc', 'mkbmdeb', 'mkrpm', 'mkkmp', 'mkdriverdisk'], load: async () => (await import('./commands/packages.js')).registerPackages },
  { names: ['dropin'], load: async () => (await import('./commands/dropin.js')).registerDropin },
  { names: ['headers'], load: async () => (await import('./commands/headers.js')).registerHeaders },
  {
    names: ['bundle'],
    load: async () => {
      const [{ registerBundle }, { registerBundleInstall }, { registerBundlePackages }, { registerRegistry }] = await Promise.all([
        import('./commands/bundle.js'),
        import('./commands/bundle-install.js'),
        import('./commands/packages.js'),
        import('./commands/registry.js'),
      ]);
      return (program, run) => {
        const bundle = registerBundle(program, run);
        registerBundleInstall(bundle, run);
        registerBundlePackages(bundle, run);
        registerRegistry(bundle, run);
      };
    },
  },
];

export async function main(argv: string[]): Promise<number> {
  // `kbundle ... | head`: a reader that stops early is not an error (as for coreutils, which die
  // of SIGPIPE silently); without this Node throws EPIPE with a stack trace.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
      process.exit(process.exitCode ?? 0);
    });
  }
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
  const names = new Set(['version', ...GROUPS.flatMap((g) => g.names)]);
  const args = normalizeArgv(argv.slice(2), names, NESTED);
  // The named group only; --help, no command or an unknown word: all of them, so commander lists or rejects.
  const named = GROUPS.filter((g) => g.names.includes(args[0] ?? ''));
  const versionOnly = args[0] === 'version' || (!named.length && args.some((a) => a === '-V' || a === '--version'));
  if (!versionOnly) for (const g of named.length ? named : GROUPS) (await g.load())(program, run);
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
