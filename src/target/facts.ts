/**
 * Everything the installer's selection needs to know about one target kernel
 * (docs/selection.md "Facts about the target"), read from a running system or from an image root.
 * Reading an image never consults the host's /proc, /sys or uname: the image
 * will boot some other machine.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { release } from 'node:os';
import { join, resolve } from 'node:path';
import { parseKernelConfig } from '../conf/kernel-config.js';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';
import { findCompiler } from './compiler.js';
import { inTreeVermagic, moduleInventory, moduleNameFromPath } from './modules.js';
import { readSignaturePolicy, type SignaturePolicy } from './policy.js';
import { isHostRoot, resolveHostPath } from './rooted.js';
import { findTargetSymvers, type SymversEntry } from './symvers.js';

export interface TargetFactsOptions {
  kernel: string;
  /** `uname -m` style (x86_64, aarch64); the caller decides, since an image may be for another machine. */
  arch: string;
  /** Image/chroot root; default '/' (the running system). */
  root?: string;
  /** Default `<root>/lib/modules`. */
  installTree?: string;
  /** Where the host's sysfs is mounted (default /sys); never read for another root. */
  sysDir?: string;
}

export interface TargetFacts {
  kernel: string;
  arch: string;
  /** Full vermagic of an in-tree module of that kernel, e.g. '6.12.117+deb12-amd64 SMP preempt mod_unload modversions '. */
  vermagic: string | null;
  /** The module vermagic was read from. */
  vermagicSource: string | null;
  symvers: Map<string, SymversEntry> | null;
  /** Path the symvers table was read from. */
  symversSource: string | null;
  /** `sha256:` digest of the uncompressed symvers text. */
  symversDigest: string | null;
  /** Loadable module names under <installTree>/<kernel>, '-' normalised to '_'. */
  installedModules: Set<string>;
  /** Modules compiled into the kernel (modules.builtin): their symbols are vmlinux's. */
  builtinModules: Set<string>;
  /** <installTree>/<kernel>/build/include exists. */
  headersPresent: boolean;
  compilerPresent: boolean;
  /** The compiler found (absolute host path), if any. */
  compiler: string | null;
  signaturePolicy: SignaturePolicy;
}

/**
 * The kernel to act on when none is given. An image root has no running
 * kernel, and the host's would be the wrong answer, so the caller must say.
 */
export function runningKernel(root = '/'): string {
  if (!isHostRoot(root)) {
    throw new KbundleError(`cannot tell which kernel the image at ${root} will run; pass -k <kernel release>`, ExitCode.Usage);
  }
  return release();
}

async function readOptionalText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return null;
  }
}

export async function readTargetFacts(opts: TargetFactsOptions): Promise<TargetFacts> {
  const root = resolve(opts.root ?? '/');
  const hostRoot = isHostRoot(root);
  const installTree = opts.installTree ?? join(root, 'lib/modules');
  const { kernel, arch } = opts;
  if (!kernel || kernel.includes('/')) throw new KbundleError(`invalid kernel release '${kernel}'`, ExitCode.Usage);

  const moduleDir = await resolveHostPath(root, join(installTree, kernel));
  const buildDir = await resolveHostPath(root, join(installTree, kernel, 'build'));

  const inventory = await moduleInventory(moduleDir);
  const vm = await inTreeVermagic(moduleDir, inventory.files);
  const symvers = await findTargetSymvers(kernel, root, installTree);
  const config = await readOptionalText(join(buildDir, '.config'));
  const compiler = await findCompiler({
    root,
    hostRoot,
    versionText: config === null ? null : (parseKernelConfig(config).get('CONFIG_CC_VERSION_TEXT') ?? null),
  });

  return {
    kernel,
    arch,
    vermagic: vm?.vermagic ?? null,
    vermagicSource: vm?.source ?? null,
    symvers: symvers?.entries ?? null,
    symversSource: symvers?.path ?? null,
    symversDigest: symvers?.digest ?? null,
    installedModules: new Set(inventory.files.map(moduleNameFromPath)),
    builtinModules: new Set(inventory.builtin.map(moduleNameFromPath)),
    headersPresent: existsSync(join(buildDir, 'include')),
    compilerPresent: compiler !== null,
    compiler,
    signaturePolicy: await readSignaturePolicy({ kernel, root, installTree, ...(opts.sysDir ? { sysDir: opts.sysDir } : {}) }),
  };
}
