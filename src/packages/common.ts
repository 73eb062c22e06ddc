/**
 * Helpers every format shares: package-name rules, arch names, dates, the
 * normalisation that makes a staged tree independent of umask and checkout
 * mtimes, module files compressed as the target kernel does, and writing the
 * results to the output directory (temp + rename, through util/atomic.ts).
 */
import { chmod, copyFile, lstat, mkdir, mkdtemp, readdir, rm, utimes, writeFile, lutimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { compressModule, moduleCompressionOf, readModule, type ModuleSuffix } from '../kmod/compression.js';
import { copyFileDurable } from '../util/atomic.js';
import { KbundleError } from '../util/errors.js';
import { pathExists } from '../util/fs.js';
import { ExitCode } from '../util/exit-codes.js';
import type { ModuleFile } from './input.js';

/** Debian policy 5.6.1 / RPM: lowercase letters, digits, + - . only; `_` (common in module names) becomes `-`. */
export function packageName(module: string): string {
  const n = module.toLowerCase().replace(/_/g, '-');
  if (!/^[a-z0-9][a-z0-9+.-]+$/.test(n)) throw new KbundleError(`"${module}" cannot be made into a package name (policy 5.6.1: [a-z0-9][a-z0-9+.-]+).`, ExitCode.BadOption);
  return n;
}

/** Debian version: must start with a digit and hold only [A-Za-z0-9.+~] (no hyphen: we add the revision). */
export function debianUpstreamVersion(v: string): string {
  if (!/^[0-9][A-Za-z0-9.+~]*$/.test(v)) throw new KbundleError(`version "${v}" is not a Debian upstream version (policy 5.6.12: starts with a digit, [A-Za-z0-9.+~]).`, ExitCode.BadOption);
  return v;
}

/** dpkg's architecture name for a kernel arch (uname -m). */
export function debArch(arch: string): string {
  const map: Record<string, string> = { x86_64: 'amd64', i386: 'i386', i686: 'i386', aarch64: 'arm64', arm64: 'arm64', armv7l: 'armhf', ppc64le: 'ppc64el', s390x: 's390x', riscv64: 'riscv64', loongarch64: 'loong64' };
  const a = map[arch];
  if (!a) throw new KbundleError(`no Debian architecture for ${arch}.`, ExitCode.BadOption);
  return a;
}

/** RFC 5322 date (debian/changelog, policy 4.4) of an epoch, in UTC. */
export function rfc2822(epoch: number): string {
  const d = new Date(epoch * 1000);
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]}, ${p(d.getUTCDate())} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** `%changelog` date of RPM: "Wed Dec 02 2026". */
export function rpmDate(epoch: number): string {
  const d = new Date(epoch * 1000);
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  return `${days[d.getUTCDay()]} ${months[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, '0')} ${d.getUTCFullYear()}`;
}

/**
 * Makes a staged tree's metadata depend on nothing but its contents: dirs
 * 0755, files 0755 if any exec bit was set else 0644 (what `chmod -R
 * u=rwX,go=rX` gives), every mtime the epoch. Run after staging, before any
 * packer reads the tree.
 */
export async function normalizeTree(dir: string, epoch: number): Promise<void> {
  const walk = async (p: string): Promise<void> => {
    const st = await lstat(p);
    if (st.isSymbolicLink()) {
      await lutimes(p, epoch, epoch);
      return;
    }
    if (st.isDirectory()) {
      for (const e of await readdir(p)) await walk(join(p, e));
      await chmod(p, 0o755);
    } else {
      await chmod(p, st.mode & 0o111 ? 0o755 : 0o644);
    }
    await utimes(p, epoch, epoch);
  };
  await walk(dir);
}

export async function writeText(path: string, text: string, mode = 0o644): Promise<void> {
  await writeFile(path, text);
  await chmod(path, mode);
}

/**
 * Places a module in `dir` compressed as `ext`: a file already compressed
 * that way is copied unchanged (DKMS's own bytes); otherwise the ELF image is
 * written and compressed with the same tool settings the installer uses.
 * The signature is part of the ELF image, so it survives either way.
 */
export async function placeModule(m: ModuleFile, dir: string, ext: ModuleSuffix): Promise<string> {
  await mkdir(dir, { recursive: true });
  const plain = join(dir, `${m.name}.ko`);
  if (moduleCompressionOf(basename(m.path)) === ext && ext !== '') {
    await copyFile(m.path, `${plain}${ext}`);
    return `${plain}${ext}`;
  }
  await writeFile(plain, await readModule(m.path));
  return compressModule(plain, ext);
}

/** Refuses before any work when an output exists (unless force). */
export async function checkOutputs(paths: string[], force: boolean): Promise<void> {
  if (force) return;
  for (const p of paths) {
    if (await pathExists(p)) throw new KbundleError(`${p} exists; pass --force to replace it.`, ExitCode.OutputExists);
  }
}

/** Copies finished files from the staging dir to their final paths: temp file + fsync + rename each. */
export async function publish(files: Array<{ from: string; to: string }>): Promise<string[]> {
  for (const f of files) await copyFileDurable(f.from, f.to);
  return files.map((f) => f.to);
}

/** Runs `fn` in a fresh private directory under the system temp dir (`prefix` names it), removed afterwards whatever happens. */
export async function withStage<T>(prefix: string, fn: (stage: string) => Promise<T>): Promise<T> {
  const stage = await mkdtemp(join(tmpdir(), prefix));
  try {
    return await fn(stage);
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}
