/**
 * `kbundle mkdeb|mkdsc|mkbmdeb|mkrpm|mkkmp|mkdriverdisk M/V` (from the DKMS
 * tree, DKMS's names and options) and `kbundle bundle <same> FILE` (from a
 * verified bundle). docs/packages.md, docs/driver-disks.md.
 */
import { Command } from 'commander';
import { machine } from 'node:os';
import { resolve } from 'node:path';
import type { ModuleSuffix } from '../../kmod/compression.js';
import type { PackageInput, KernelRequest } from '../../packages/input.js';
import { KbundleError } from '../../util/errors.js';
import { ExitCode } from '../../util/exit-codes.js';
import { pairKernelsArches } from '../argv.js';
import { addCommonOptions, contextFrom, requireModule, type CommonOptions } from '../options.js';

type Runner = (a: (p: string[], o: CommonOptions) => Promise<number>) => (...args: unknown[]) => Promise<void>;
type Format = 'mkdeb' | 'mkdsc' | 'mkbmdeb' | 'mkrpm' | 'mkkmp' | 'mkdriverdisk';

interface PkgOptions {
  kernelver: string[];
  arch: string[];
  output?: string;
  force?: boolean;
  json?: boolean;
  quiet?: boolean;
  maintainer: string;
  compress?: string;
  distro: string;
  format?: string;
  label: string;
  suseRelease: string;
  media?: string;
  release?: string;
  sourceOnly?: boolean;
  installtree?: string;
  module?: string;
  // bundle only
  trust?: string[];
  key?: string[];
  keyring?: string;
  insecure?: boolean;
}

const collect = (v: string, prev: string[]) => [...prev, v];
const DEFAULT_MAINTAINER = 'kbundle packager <packager@kbundle.example.org>';

const DESCRIPTIONS: Record<Format, string> = {
  mkdeb: 'a <m>-dkms_<v>-1_all.deb: the source under /usr/src and scripts that hand it to dkms on configure/remove',
  mkdsc: 'the Debian source package (.dsc, .orig.tar.gz, .debian.tar.xz) that builds mkdeb\'s .deb',
  mkbmdeb: 'one <m>-modules-<kernel>_<v>_<arch>.deb per kernel: only the signed modules, depmod in postinst/postrm',
  mkrpm: 'a <m>-dkms noarch RPM (source + dkms scripts) and a kmod-<m> RPM per kernel (-k)',
  mkkmp: 'one SUSE Kernel Module Package (<m>-kmp-<flavor>) per kernel',
  mkdriverdisk: 'a driver update disk (Red Hat rhdd3 + kmod RPMs + repodata, or SUSE linux/suse/...) as ISO (label OEMDRV), tar or directory',
};

/** Formats that carry binaries: default kernels are all the input has. */
const BINARY: Record<Format, boolean> = { mkdeb: false, mkdsc: false, mkbmdeb: true, mkrpm: false, mkkmp: true, mkdriverdisk: true };

function packageOptions(cmd: Command, f: Format): Command {
  cmd
    .option('-o, --output <path>', f === 'mkdriverdisk' ? 'output: X.iso, X.tar or a directory (default ./<m>-<v>-dd.iso)' : 'output directory (default: the current directory)')
    .option('--maintainer <who>', 'Maintainer/Packager ("Name <email>")', process.env.DEBFULLNAME && process.env.DEBEMAIL ? `${process.env.DEBFULLNAME} <${process.env.DEBEMAIL}>` : DEFAULT_MAINTAINER);
  if (f !== 'mkdeb' && f !== 'mkdsc') cmd.option('--compress <kind>', 'module compression none|gz|xz|zst (default: as the kernel\'s own modules under --installtree, none if unknown)');
  if (f === 'mkdriverdisk') {
    cmd
      .option('-d, --distro <d>', 'rhel|suse: which installer\'s layout (DKMS\'s redhat = rhel)', 'rhel')
      .option('--format <f>', 'iso|tar|dir (default from -o: .iso, .tar, else a directory; iso without -o)')
      .option('--label <l>', 'ISO volume label', 'OEMDRV')
      .option('--suse-release <r>', 'SUSE: the <release> of linux/suse/<arch>-<release>', 'sle15')
      // DKMS 2.x's names for the same two options.
      .option('--media <m>', 'same as --format (DKMS 2.x: iso|tar)')
      .option('-r, --release <r>', 'same as --suse-release (DKMS 2.x)');
  }
  if (f === 'mkrpm') cmd.option('--source-only', 'only the <m>-dkms RPM, no kmod RPMs (DKMS 2.x option)');
  return cmd;
}

function kernelsOf(o: PkgOptions): KernelRequest[] {
  if (!o.kernelver.length) return [];
  const r = pairKernelsArches(o.kernelver, o.arch, '', machine());
  if (typeof r === 'string') throw new KbundleError(r, ExitCode.General);
  return r;
}

function compressionFn(o: PkgOptions, installTree: string): (kernel: string) => Promise<ModuleSuffix> {
  const kinds: Record<string, ModuleSuffix> = { none: '', gz: '.gz', xz: '.xz', zst: '.zst' };
  if (o.compress !== undefined && !(o.compress in kinds)) throw new KbundleError(`--compress must be none, gz, xz or zst, got "${o.compress}".`, ExitCode.BadOption);
  return async (kernel) => {
    if (o.compress !== undefined) return kinds[o.compress]!;
    const { detectKernelCompression } = await import('../../kmod/compression.js');
    return detectKernelCompression(installTree, kernel);
  };
}

/** Builds format `f` from `input`; prints (or --json lists) what it wrote. */
async function produce(f: Format, input: PackageInput, o: PkgOptions, installTree: string): Promise<number> {
  // Modes of everything the tools create must not follow the caller's umask.
  process.umask(0o022);
  const P = await import('../../packages/index.js');
  const outDir = resolve(f === 'mkdriverdisk' ? '.' : (o.output ?? '.'));
  const out = { outDir, force: Boolean(o.force) };
  const deb = { maintainer: o.maintainer, revision: '1' };
  const rpm = { packager: o.maintainer, release: '1', compression: compressionFn(o, installTree) };
  const say = (l: string) => (o.quiet || o.json ? undefined : process.stderr.write(`${l}\n`));
  say(`${f}: ${input.module}/${input.version} from the ${input.origin}${input.kernels.length ? `, kernels ${input.kernels.map((k) => `${k.kernel}/${k.arch}`).join(' ')}` : ''}`);
  let files: string[];
  const warnings: string[] = [];
  try {
    switch (f) {
      case 'mkdeb':
        files = await P.mkdeb(input, deb, out);
        break;
      case 'mkdsc':
        files = await P.mkdsc(input, deb, out);
        break;
      case 'mkbmdeb':
        files = await P.mkbmdeb(input, { ...deb, compression: rpm.compression }, out);
        break;
      case 'mkrpm':
        files = await P.mkrpm(o.sourceOnly ? { ...input, kernels: [] } : input, rpm, out);
        break;
      case 'mkkmp':
        files = await P.mkkmp(input, rpm, out);
        break;
      case 'mkdriverdisk': {
        if (o.distro === 'redhat') o.distro = 'rhel';
        if (o.distro !== 'rhel' && o.distro !== 'suse') throw new KbundleError(`--distro must be rhel or suse, got "${o.distro}".`, ExitCode.BadOption);
        const given = o.format ?? o.media ?? (o.output ? (P.formatFromName(o.output) ?? 'dir') : 'iso');
        if (!['iso', 'tar', 'dir'].includes(given)) throw new KbundleError(`--format must be iso, tar or dir, got "${given}".`, ExitCode.BadOption);
        const format = given as 'iso' | 'tar' | 'dir';
        const output = resolve(o.output ?? P.defaultDiskName(input, format));
        const r = await P.mkdriverdisk(input, { ...rpm, distro: o.distro, format, output, force: Boolean(o.force), label: o.label, suseRelease: o.release ?? o.suseRelease });
        files = [r.output];
        warnings.push(...r.warnings);
        break;
      }
    }
  } finally {
    await input.cleanup();
  }
  for (const w of warnings) process.stderr.write(`Warning: ${w}\n`);
  if (o.json) process.stdout.write(`${JSON.stringify({ format: f, module: input.module, version: input.version, files, warnings }, null, 2)}\n`);
  else if (!o.quiet) for (const p of files) process.stdout.write(`${p}\n`);
  return 0;
}

const FORMATS: Format[] = ['mkdeb', 'mkdsc', 'mkbmdeb', 'mkrpm', 'mkkmp', 'mkdriverdisk'];

/** The DKMS-tree commands: `kbundle mkdeb M/V [-k K ...]` etc. */
export function registerPackages(program: Command, run: Runner): void {
  for (const f of FORMATS) {
    packageOptions(addCommonOptions(program.command(f).description(`${DESCRIPTIONS[f]}; from the DKMS tree${BINARY[f] ? ' (without -k: every kernel the module is built for)' : ''}`).argument('[module]', 'M/V')), f).action(
      run(async (p, co) => {
        const o = co as unknown as PkgOptions & CommonOptions;
        const ctx = await contextFrom(co);
        const m = requireModule(co, p);
        const { inputFromTree } = await import('../../packages/input.js');
        const input = await inputFromTree(ctx.roots, m, kernelsOf(o), BINARY[f] || o.kernelver.length > 0);
        return produce(f, input, o, ctx.roots.installTree);
      }),
    );
  }
}

/** `kbundle bundle mkbmdeb FILE ...`: the same from a bundle, verified first as `bundle install` verifies it. */
export function registerBundlePackages(bundle: Command, run: Runner): void {
  const r = (fn: (p: string[], o: PkgOptions) => Promise<number>) => run(fn as unknown as (p: string[], o: CommonOptions) => Promise<number>);
  for (const f of FORMATS) {
    packageOptions(
      bundle
        .command(f)
        .description(`${DESCRIPTIONS[f]}; from a bundle, verified first`)
        .argument('<file>', 'the bundle')
        .option('-m, --module <name>', 'the package of a bundle that holds several')
        .option('-k, --kernelver <kernel[/arch]>', 'kernel (repeatable); default: every kernel the bundle holds', collect, [])
        .option('-a, --arch <arch>', 'arch (repeatable, 1:1 with -k); default: uname -m', collect, [])
        .option('--installtree <dir>', 'where kernels\' own modules are (for their compression)', '/lib/modules')
        .option('--force', 'replace existing outputs')
        .option('--trust <pub>', 'trusted bundle public key (repeatable)', collect, [])
        .option('--key <pub>', 'same as --trust', collect, [])
        .option('--keyring <dir>', 'directory of trusted *.pub keys')
        .option('--insecure', 'do not check the signature when no key is trusted (digests are still checked)')
        .option('--json', 'list the written files as JSON')
        .option('-q, --quiet', 'print nothing but errors'),
      f,
    ).action(
      r(async (p, o) => {
        const { keysOf } = await import('./bundle-install.js');
        const keys = await keysOf({ trust: o.trust ?? [], key: o.key ?? [], keyring: o.keyring, insecure: o.insecure });
        const { openVerified } = await import('../../deploy/deploy.js');
        const { inputFromBundle } = await import('../../packages/input.js');
        const b = await openVerified(resolve(p[0]!), keys);
        const input = await inputFromBundle(b, o.module, kernelsOf(o));
        return produce(f, input, o, resolve(o.installtree ?? '/lib/modules'));
      }),
    );
  }
}

export const PACKAGE_COMMANDS = FORMATS;
