/**
 * The DKMS option set every lifecycle command accepts, and how the parsed
 * options become a RunContext (roots from options, else framework.conf,
 * else DKMS's defaults).
 */
import { Command, Option } from 'commander';
import { availableParallelism, machine, release } from 'node:os';
import { join, resolve } from 'node:path';
import { readFrameworkConf } from '../conf/framework.js';
import { readOsRelease } from '../conf/evaluate.js';
import type { RunContext } from '../lifecycle/context.js';
import { makeProgress } from '../progress/progress.js';
import type { ModuleRef, Target } from '../tree/paths.js';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';
import { pairKernelsArches, splitModuleVersion } from './argv.js';
import { DEFAULT_LOCK_TIMEOUT_MS } from '../recovery/tree-lock.js';

export interface CommonOptions {
  module?: string;
  versionOf?: string;
  kernelver: string[];
  arch: string[];
  all?: boolean;
  force?: boolean;
  j?: string;
  kernelsourcedir?: string;
  dkmstree?: string;
  sourcetree?: string;
  installtree?: string;
  depmod: boolean;
  quiet?: boolean;
  verbose?: boolean;
  json?: boolean;
  cache: boolean;
  cacheDir?: string;
  directive: string[];
  c?: string;
  etcdir?: string;
  lockTimeout?: string;
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function addCommonOptions(cmd: Command): Command {
  return cmd
    .option('-m, --module <module>', 'module name, or module/version')
    .option('-v, --version-of <version>', 'module version (DKMS -v)')
    .option('-k, --kernelver <kernel[/arch]>', 'kernel release (repeatable); default: the running kernel', collect, [])
    .option('-a, --arch <arch>', 'architecture (repeatable, paired 1:1 with -k); default: uname -m', collect, [])
    .option('--all', 'every kernel/arch the module is built for (uninstall, unbuild, remove, mktarball)')
    .option('--force', 'rebuild / reinstall / overwrite')
    .option('-j <jobs>', 'make jobs shared by all concurrent builds (0 = unlimited); default: nproc')
    .option('--kernelsourcedir <dir>', 'kernel headers dir; default <installtree>/<kernel>/build')
    .option('--dkmstree <dir>', 'state tree (default /var/lib/dkms)')
    .option('--sourcetree <dir>', 'module sources (default /usr/src)')
    .option('--installtree <dir>', 'installed modules (default /lib/modules)')
    .option('--no-depmod', 'do not run depmod after install/uninstall')
    .option('-q, --quiet', 'print nothing but errors')
    .option('--verbose', 'more detail')
    .option('--json', 'machine-readable output where supported')
    .option('--no-cache', 'do not use the build cache')
    .option('--cache-dir <dir>', 'build cache dir (default /var/cache/kbundle for /var/lib/dkms, else <dkmstree>/.kbundle-cache)')
    .option('--directive <NAME=value>', 'extra dkms.conf directive (repeatable)', collect, [])
    .option('-c <file>', 'use this dkms.conf instead of the module\'s own')
    .option('--lock-timeout <seconds>', 'wait this long for another kbundle command on the same DKMS tree (default 3600)')
    .addOption(new Option('--etcdir <dir>', 'DKMS config dir: framework.conf, <module>.conf overrides').default('/etc/dkms'))
    .addOption(new Option('--rpm_safe_upgrade').hideHelp())
    .addOption(new Option('--no-initrd').hideHelp())
    .addOption(new Option('--no-clean-kernel').hideHelp())
    .addOption(new Option('--no-prepare-kernel').hideHelp());
}

/**
 * The system's DKMS tree keeps its cache in /var/cache/kbundle (FHS 5.5:
 * data that can be regenerated and deleted without loss), so removing or
 * purging a module leaves nothing of it under /var/lib/dkms, as with dkms,
 * while a reinstall still finds its earlier builds. Any other tree (scratch,
 * --dkmstree) keeps its cache inside itself, so it stays one self-contained
 * directory.
 */
export function defaultCacheDir(dkmsTree: string): string {
  return dkmsTree === '/var/lib/dkms' ? '/var/cache/kbundle' : join(dkmsTree, '.kbundle-cache');
}

export async function contextFrom(o: CommonOptions, firstKernel?: string): Promise<RunContext> {
  const etcDir = resolve(o.etcdir ?? '/etc/dkms');
  const fw = await readFrameworkConf(join(etcDir, 'framework.conf'), firstKernel);
  const dkmsTree = resolve(o.dkmstree ?? fw.dkmsTree ?? '/var/lib/dkms');
  const jobs = o.j !== undefined ? Number(o.j) : (fw.parallelJobs ?? availableParallelism());
  if (!Number.isInteger(jobs) || jobs < 0) throw new KbundleError(`-j needs a whole number >= 0, got "${o.j}".`, ExitCode.Usage);
  const quiet = Boolean(o.quiet);
  return {
    roots: {
      dkmsTree,
      sourceTree: resolve(o.sourcetree ?? fw.sourceTree ?? '/usr/src'),
      installTree: resolve(o.installtree ?? fw.installTree ?? '/lib/modules'),
    },
    etcDir,
    framework: { signFile: fw.signFile, mokSigningKey: fw.mokSigningKey, mokCertificate: fw.mokCertificate, parallelJobs: fw.parallelJobs },
    jobs,
    force: Boolean(o.force),
    noCache: !o.cache,
    cacheDir: resolve(o.cacheDir ?? defaultCacheDir(dkmsTree)),
    kernelSourceDir: o.kernelsourcedir ? resolve(o.kernelsourcedir) : undefined,
    noDepmod: !o.depmod,
    quiet,
    verbose: Boolean(o.verbose),
    osRelease: readOsRelease(),
    directives: o.directive,
    confOverride: o.c ? resolve(o.c) : undefined,
    progress: makeProgress(quiet || Boolean(o.json), 'stdout'),
    say: (line) => {
      if (!quiet) process.stdout.write(`${line}\n`);
    },
    warn: (line) => process.stderr.write(`Warning: ${line}\n`),
  };
}

/** The module named by -m [m/v] (+ -v) or a bare m/v word. */
export function moduleFrom(o: CommonOptions, positional: string[]): { module?: string; version?: string } {
  const word = o.module ?? positional[0];
  const s = word ? splitModuleVersion(word) : undefined;
  return { module: s?.module, version: s?.version ?? o.versionOf };
}

export function requireModule(o: CommonOptions, positional: string[]): ModuleRef {
  const { module, version } = moduleFrom(o, positional);
  if (!module || !version) {
    throw new KbundleError('Invalid number of arguments passed. Usage: <action> <module>/<module-version> or -m <module>/<module-version> or -m <module> -v <module-version>', ExitCode.General);
  }
  return { module, version };
}

export function targetsFrom(o: CommonOptions): Target[] {
  const r = pairKernelsArches(o.kernelver, o.arch, release(), machine());
  if (typeof r === 'string') throw new KbundleError(r, ExitCode.General);
  for (const t of r) if (!t.kernel || !t.arch) throw new KbundleError('Empty kernel version or architecture.', 16);
  return r;
}

export function lockTimeoutMs(o: { lockTimeout?: string }, defaultMs = DEFAULT_LOCK_TIMEOUT_MS): number {
  if (o.lockTimeout === undefined) return defaultMs;
  const s = Number(o.lockTimeout);
  if (!Number.isFinite(s) || s < 0) throw new KbundleError(`--lock-timeout needs seconds >= 0, got "${o.lockTimeout}".`, ExitCode.Usage);
  return s * 1000;
}

type Action = (positional: string[], o: CommonOptions) => Promise<number>;

/**
 * A mutating command: holds the DKMS tree's lock for its whole run (after
 * finishing whatever a killed command left), so two postinsts, or autoinstall
 * racing a manual build, take turns instead of sharing a build dir.
 */
export function locked(name: string, fn: Action): Action {
  return async (positional, o) => {
    const ctx = await contextFrom(o);
    const what = [name, o.module ?? positional[0]].filter(Boolean).join(' ');
    // Loaded here, not at start-up: recovery pulls in every mutating step's code.
    const { withTreeLock } = await import('../recovery/recover.js');
    return withTreeLock(ctx, what, () => fn(positional, o), lockTimeoutMs(o));
  };
}
