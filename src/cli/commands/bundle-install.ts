/** `kbundle bundle install|plan|extract|autoinstall|recover` (the air-gapped installer; docs/installer.md). */
import { Command } from 'commander';
import { machine } from 'node:os';
import { join, resolve } from 'node:path';
import type { RunContext } from '../../lifecycle/context.js';
import { KbundleError } from '../../util/errors.js';
import { ExitCode } from '../../util/exit-codes.js';
import { lockTimeoutMs, type CommonOptions } from '../options.js';
import { trustedKeysFrom } from './bundle.js';

type Runner = (a: (p: string[], o: CommonOptions) => Promise<number>) => (...args: unknown[]) => Promise<void>;

interface InstallerOptions {
  kernelver?: string;
  arch?: string;
  root?: string;
  trust: string[];
  key: string[];
  keyring?: string;
  insecure?: boolean;
  allowDowngrade?: boolean;
  requireTrustedSigner?: boolean;
  force?: boolean;
  dkmstree?: string;
  sourcetree?: string;
  installtree?: string;
  etcdir?: string;
  depmod: boolean;
  json?: boolean;
  quiet?: boolean;
  lockTimeout?: string;
  j?: string;
  output?: string;
  compress?: string;
}

const collect = (v: string, prev: string[]) => [...prev, v];

function treeOptions(cmd: Command): Command {
  return cmd
    .option('-k, --kernelver <kernel>', 'target kernel release (default: the running kernel; required with --root)')
    .option('-a, --arch <arch>', 'target arch (default: uname -m)')
    .option('--root <dir>', 'image/chroot root: trees under it, nothing read from the host')
    .option('--dkmstree <dir>', 'DKMS tree (default <root>/var/lib/dkms)')
    .option('--sourcetree <dir>', 'source tree (default <root>/usr/src)')
    .option('--installtree <dir>', 'module tree (default <root>/lib/modules)')
    .option('--etcdir <dir>', 'DKMS config dir (default <root>/etc/dkms)')
    .option('--json', 'JSON output')
    .option('-q, --quiet', 'only errors and warnings');
}

function keyOptions(cmd: Command): Command {
  return cmd
    .option('--trust <pub>', 'trusted bundle public key (minisign format; repeatable)', collect, [])
    .option('--key <pub>', 'same as --trust', collect, [])
    .option('--keyring <dir>', 'directory of trusted *.pub keys')
    .option('--insecure', 'install without checking the signature when no key is trusted (digests are still checked)');
}

/** --root R means R/var/lib/dkms, R/usr/src, R/lib/modules, R/etc/dkms unless given explicitly. */
async function installerContext(o: InstallerOptions): Promise<{ ctx: RunContext; root: string }> {
  const { contextFrom } = await import('../options.js');
  const { readOsRelease } = await import('../../conf/os-release.js');
  const root = resolve(o.root ?? '/');
  const under = (p: string) => join(root, p);
  const ctx = await contextFrom({
    kernelver: [],
    arch: [],
    directive: [],
    cache: true,
    depmod: o.depmod,
    quiet: o.quiet || o.json,
    json: o.json,
    j: o.j,
    dkmstree: o.dkmstree ?? (o.root ? under('var/lib/dkms') : undefined),
    sourcetree: o.sourcetree ?? (o.root ? under('usr/src') : undefined),
    installtree: o.installtree ?? (o.root ? under('lib/modules') : undefined),
    etcdir: o.etcdir ?? (o.root ? under('etc/dkms') : undefined),
  } as CommonOptions);
  // DKMS's DEST_MODULE_LOCATION rule follows the system being installed into, i.e. the image's os-release.
  if (o.root) ctx.osRelease = readOsRelease(under('etc/os-release'));
  return { ctx, root };
}

async function targetOf(o: InstallerOptions, root: string): Promise<{ kernel: string; arch: string }> {
  const { runningKernel } = await import('../../target/facts.js');
  // runningKernel refuses for an image root: the host's uname -r says nothing about the image.
  return { kernel: o.kernelver ?? runningKernel(root), arch: o.arch ?? machine() };
}

/** The trusted keys of a command that reads a bundle (install, plan, the package builders); none only with --insecure, said loudly. */
export async function keysOf(o: Pick<InstallerOptions, 'trust' | 'key' | 'keyring' | 'insecure'>) {
  const keys = await trustedKeysFrom({ key: [...o.trust, ...o.key], keyring: o.keyring });
  if (!keys.length && !o.insecure) {
    throw new KbundleError('no trusted bundle key: pass --trust FILE.pub or --keyring DIR (or --insecure to skip the signature check).', ExitCode.UntrustedKey);
  }
  if (!keys.length) {
    process.stderr.write(
      'WARNING: --insecure: the bundle signature is NOT checked. Anyone could have made this bundle; only the internal digests and layout are verified.\n',
    );
  }
  return keys;
}

const lockTimeout = (o: InstallerOptions) => lockTimeoutMs(o, 600_000);

export function registerBundleInstall(bundle: Command, run: Runner): void {
  const r = (fn: (p: string[], o: InstallerOptions) => Promise<number>) => run(fn as unknown as (p: string[], o: CommonOptions) => Promise<number>);

  keyOptions(
    treeOptions(
      bundle
        .command('install')
        .description('verify a bundle, pick per module exact > compatible > source build, and install it atomically into the DKMS tree')
        .argument('<file>'),
    ),
  )
    .option('--allow-downgrade', 'install even if a newer bundle of the module is installed')
    .option('--require-trusted-signer', 'refuse when signatures may be enforced and the modules\' signer is not a key the kernel trusts')
    .option('--force', 'reinstall even if this bundle is already installed')
    .option('--no-depmod', 'do not run depmod')
    .option('--lock-timeout <seconds>', 'wait this long for another install (default 600)')
    .option('-j <jobs>', 'make jobs for a source build')
    .action(
      r(async (p, o) => {
        const { installBundle } = await import('../../deploy/deploy.js');
        const { formatPlan } = await import('../../deploy/plan.js');
        const trustedKeys = await keysOf(o);
        const { ctx, root } = await installerContext(o);
        const t = await targetOf(o, root);
        const res = await installBundle(ctx, resolve(p[0]!), {
          ...t,
          root,
          trustedKeys,
          signatureChecked: trustedKeys.length > 0,
          allowDowngrade: Boolean(o.allowDowngrade),
          requireTrustedSigner: Boolean(o.requireTrustedSigner),
          force: Boolean(o.force),
          lockTimeoutMs: lockTimeout(o),
        });
        if (o.json) process.stdout.write(`${JSON.stringify({ installed: res.installed, skipped: res.skipped, plan: res.plan }, null, 2)}\n`);
        else if (!o.quiet) for (const l of formatPlan(res.plan)) process.stdout.write(`${l}\n`);
        return 0;
      }),
    );

  keyOptions(treeOptions(bundle.command('plan').description('print what bundle install would do (which step wins, and why), touching nothing').argument('<file>'))).action(
    r(async (p, o) => {
      const { openVerified } = await import('../../deploy/deploy.js');
      const { preparePlan } = await import('../../deploy/prepare.js');
      const { formatPlan } = await import('../../deploy/plan.js');
      const trustedKeys = await keysOf(o);
      const { ctx, root } = await installerContext(o);
      const t = await targetOf(o, root);
      const b = await openVerified(resolve(p[0]!), trustedKeys);
      const { plan } = await preparePlan(ctx, b, { ...t, root, signatureChecked: trustedKeys.length > 0, allowDowngrade: false, requireTrustedSigner: false, force: false });
      if (o.json) process.stdout.write(`${JSON.stringify(plan, null, 2)}\n`);
      else for (const l of formatPlan(plan)) process.stdout.write(`${l}\n`);
      // Same exit code install would give, so scripts can ask "would it work?".
      return plan.problems[0]?.code ?? 0;
    }),
  );

  keyOptions(
    treeOptions(
      bundle
        .command('extract')
        .description('write just the module files one kernel needs to a new directory (driver update disks, installer images)')
        .argument('<file>'),
    ),
  )
    .requiredOption('-o, --output <dir>', 'new directory to create')
    .option('--compress <kind>', 'none|gz|xz|zst (default: as the target kernel\'s modules, none if unknown)')
    .action(
      r(async (p, o) => {
        const { openVerified } = await import('../../deploy/deploy.js');
        const { extractForKernel } = await import('../../deploy/extract.js');
        const { detectKernelCompression } = await import('../../kmod/compression.js');
        const { installedLocation } = await import('../../lifecycle/context.js');
        const trustedKeys = await keysOf(o);
        const { ctx, root } = await installerContext(o);
        if (!o.kernelver) throw new KbundleError('bundle extract needs -k KERNEL.', ExitCode.Usage);
        const kinds: Record<string, '' | '.gz' | '.xz' | '.zst'> = { none: '', gz: '.gz', xz: '.xz', zst: '.zst' };
        if (o.compress !== undefined && !(o.compress in kinds)) throw new KbundleError(`--compress must be none, gz, xz or zst, got "${o.compress}".`, ExitCode.Usage);
        const compression = o.compress !== undefined ? kinds[o.compress]! : await detectKernelCompression(ctx.roots.installTree, o.kernelver);
        const b = await openVerified(resolve(p[0]!), trustedKeys);
        const res = await extractForKernel(b, {
          root,
          installTree: ctx.roots.installTree,
          kernel: o.kernelver,
          arch: o.arch ?? machine(),
          outDir: resolve(o.output!),
          compression,
          location: (l) => installedLocation(ctx, l),
        });
        if (o.json) process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
        else if (!o.quiet) for (const f of res.files) process.stdout.write(`${f}\n`);
        return 0;
      }),
    );

  treeOptions(
    bundle
      .command('autoinstall')
      .description('install, for the kernel, every package of the stored (previously installed) bundles that is not installed yet; offline'),
  )
    .option('--no-depmod', 'do not run depmod')
    .option('--lock-timeout <seconds>', 'wait this long for another install (default 600)')
    .option('-j <jobs>', 'make jobs for a source build')
    .action(
      r(async (_p, o) => {
        const { autoinstallFromBundles } = await import('../../deploy/deploy.js');
        const { ctx, root } = await installerContext(o);
        const t = await targetOf(o, root);
        const res = await autoinstallFromBundles(ctx, root, [t], lockTimeout(o));
        if (o.json) process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
        return res.failed.length ? ExitCode.AutoinstallFailed : 0;
      }),
    );

  treeOptions(bundle.command('recover').description('finish (or roll back) any interrupted kbundle command on the tree: install, uninstall, remove, build, bundle install (every mutating command and status do this too)'))
    .option('--lock-timeout <seconds>', 'wait this long for another install (default 600)')
    .option('--no-depmod', 'do not run depmod')
    .action(
      r(async (_p, o) => {
        const { recoverTree } = await import('../../recovery/recover.js');
        const { acquireLock } = await import('../../recovery/tree-lock.js');
        const { ctx } = await installerContext(o);
        const lock = await acquireLock(ctx.roots.dkmsTree, {
          timeoutMs: lockTimeout(o),
          what: 'bundle recover',
          onWait: (pid, what) => ctx.warn(`waiting for another kbundle ${what} (pid ${pid}) to finish...`),
        });
        const res = await recoverTree(ctx).finally(() => lock.release());
        if (!o.quiet) process.stdout.write(res === 'none' ? 'nothing to recover\n' : res === 'forward' ? 'interrupted install finished\n' : 'interrupted install rolled back\n');
        return 0;
      }),
    );
}
