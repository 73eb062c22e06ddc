/**
 * `kbundle headers fetch`: a usable kernel build directory for any Debian
 * kernel release and arch, without installing anything system-wide:
 * apt-get download of the flavour, -common and host linux-kbuild packages
 * (plan.ts), dpkg -x into one staging tree, the flavour Makefile pointed at
 * the unpacked -common, the tree checked (its .config names the arch asked
 * for) and published by one rename as <root>/<release>-<arch>/. A tree that is
 * already there is reused (the download cache of a CI job).
 */
import { existsSync, readdirSync } from 'node:fs';
import { readFile, readlink, rm, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { archOfHeaders } from '../arch/headers-arch.js';
import { hostArch, requireArch, sameArch } from '../arch/arch.js';
import { ExitCode } from '../util/exit-codes.js';
import { commitStagedDir, mkdirDurable, stagingDirFor, sweepTemps, tempPathFor, writeFileDurable } from '../util/atomic.js';
import { KbundleError } from '../util/errors.js';
import { loadExeca } from '../util/execa.js';
import { PrivateApt } from './apt.js';
import { firstDepends, headerPackages, rewriteMakefile, type HeaderPackage } from './plan.js';

export const FETCH_RECORD = '.kbundle-headers.json';

export interface FetchOptions {
  kernels: string[];
  /** Any spelling (arm64, aarch64); default the host's. */
  arch?: string;
  /** Where trees are kept. */
  root: string;
  /** Refresh the private package lists even when present. */
  update?: boolean;
  say(line: string): void;
}

export interface FetchedHeaders {
  kernel: string;
  /** uname -m spelling. */
  arch: string;
  /** The kernel build directory: use as kernel_source_dir / a manifest's `headers`. */
  headers: string;
  packages: string[];
  reused: boolean;
}

export function treeDir(root: string, kernel: string, arch: string): string {
  return join(root, `${kernel}-${requireArch(arch).uname}`);
}

export function headersDirIn(tree: string, kernel: string): string {
  return join(tree, 'usr/src', `linux-headers-${kernel}`);
}

/** Debian's lib/modules/<k>/{build,source} are absolute links into /usr/src: made relative, so they stay inside the tree. */
async function relativeModuleLinks(tree: string, kernel: string): Promise<void> {
  const dir = join(tree, 'lib/modules', kernel);
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    let target: string;
    try {
      target = await readlink(p);
    } catch {
      continue;
    }
    if (!target.startsWith('/')) continue;
    await unlink(p);
    await symlink(`../../..${target}`, p);
  }
}

async function unpack(debs: string[], staging: string): Promise<void> {
  const execa = await loadExeca();
  for (const deb of debs) {
    const r = await execa('dpkg-deb', ['-x', deb, staging], { reject: false, stdin: 'ignore' });
    if (r.exitCode !== 0) throw new KbundleError(`dpkg-deb -x ${deb} failed: ${String(r.stderr).trim()}`, ExitCode.HeadersFetchFailed);
  }
}

async function fetchOne(apt: PrivateApt, o: FetchOptions, kernel: string, arch: string): Promise<FetchedHeaders> {
  const a = requireArch(arch);
  const host = requireArch(hostArch());
  const tree = treeDir(o.root, kernel, arch);
  const headers = headersDirIn(tree, kernel);
  if (existsSync(join(tree, FETCH_RECORD))) {
    const rec = JSON.parse(await readFile(join(tree, FETCH_RECORD), 'utf8')) as { packages: string[] };
    return { kernel, arch: a.uname, headers, packages: rec.packages, reused: true };
  }
  const show = await apt.show(`linux-headers-${kernel}:${a.debian}`);
  if (show === null) {
    throw new KbundleError(`the archive has no linux-headers-${kernel} for ${a.debian}`, ExitCode.HeadersFetchFailed, [
      `Releases it serves: apt-cache search --names-only '^linux-headers-.*-${kernel.split('-').pop()}$' (with the target arch in APT::Architectures).`,
    ]);
  }
  const pkgs = headerPackages(kernel, a.debian, host.debian, firstDepends(show));
  if (typeof pkgs === 'string') throw new KbundleError(pkgs, ExitCode.HeadersFetchFailed);
  o.say(`${kernel} (${a.uname}): downloading ${pkgs.map((p: HeaderPackage) => p.spec).join(' ')}`);
  // Per process: two fetches of the same kernel at once must not share (and delete) one download dir.
  const debDir = tempPathFor(join(o.root, '.debs', `${kernel}-${a.uname}`));
  await apt.download(pkgs.map((p) => p.spec), debDir);
  const debs = readdirSync(debDir).filter((n) => n.endsWith('.deb')).sort().map((n) => join(debDir, n));

  const staging = await stagingDirFor(tree);
  try {
    await unpack(debs, staging);
    const stagedHeaders = headersDirIn(staging, kernel);
    const makefile = join(stagedHeaders, 'Makefile');
    if (!existsSync(makefile)) throw new KbundleError(`linux-headers-${kernel} has no Makefile at usr/src/linux-headers-${kernel}/`, ExitCode.BadHeaders);
    // The final path, not the staging one: the tree is used after the rename.
    await writeFileDurable(makefile, rewriteMakefile(await readFile(makefile, 'utf8'), tree), { durable: false });
    await relativeModuleLinks(staging, kernel);
    const got = archOfHeaders(stagedHeaders);
    if (!got || !sameArch(got, a.uname)) throw new KbundleError(`linux-headers-${kernel} unpacked, but its .config is for ${got ?? 'no known arch'}, not ${a.uname}`, ExitCode.BadHeaders);
    for (const tool of ['scripts/basic/fixdep', 'scripts/mod/modpost']) {
      if (!existsSync(join(stagedHeaders, tool))) throw new KbundleError(`linux-headers-${kernel}: ${tool} missing after unpacking ${pkgs.find((p) => p.role === 'kbuild')!.spec}`, ExitCode.BadHeaders);
    }
    const packages = debs.map((d) => d.slice(debDir.length + 1));
    await writeFileDurable(join(staging, FETCH_RECORD), `${JSON.stringify({ kernel, arch: a.uname, hostArch: host.uname, packages }, null, 2)}\n`, { durable: false });
    // A cache of downloaded files: not fsynced file by file (16,000 of them);
    // the record written last is what marks a tree complete, and a tree
    // without one is fetched again.
    await commitStagedDir(staging, tree, false);
    await rm(debDir, { recursive: true, force: true });
    return { kernel, arch: a.uname, headers, packages, reused: false };
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    await rm(debDir, { recursive: true, force: true });
    throw e;
  }
}

export async function fetchHeaders(o: FetchOptions): Promise<FetchedHeaders[]> {
  const arch = o.arch ?? hostArch();
  const a = requireArch(arch);
  const host = requireArch(hostArch());
  await mkdirDurable(o.root);
  await sweepTemps([o.root, join(o.root, '.debs')]);
  const apt = new PrivateApt(join(o.root, '.apt'), [...new Set([host.debian, a.debian])]);
  if (o.update || !apt.hasLists()) {
    o.say(`updating the package lists for ${[...new Set([host.debian, a.debian])].join(', ')} in ${join(o.root, '.apt')}`);
    await apt.update();
  }
  const out: FetchedHeaders[] = [];
  for (const k of o.kernels) out.push(await fetchOne(apt, o, k, arch));
  return out;
}
