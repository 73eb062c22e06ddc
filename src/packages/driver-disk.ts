/**
 * mkdriverdisk: driver update disks.
 *  - Red Hat family (Anaconda's DUD format 3): `rhdd3` (one line describing
 *    the disk), `rpms/<arch>/kmod-*.rpm` and `rpms/<arch>/repodata/` made by
 *    createrepo_c; volume label OEMDRV, which Anaconda probes without any
 *    boot option.
 *  - SUSE (linuxrc): `linux/suse/<arch>-<release>/install/*.rpm` (KMPs) and
 *    `modules/*.ko` (loaded by the installer itself).
 * Written as an ISO by xorriso, a tar, or a plain directory; reproducible:
 * every file's mode and mtime fixed, sorted entries, fixed volume dates.
 */
import { cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { commitStagedDir, tempPathFor } from '../util/atomic.js';
import { KbundleError } from '../util/errors.js';
import { pathExists } from '../util/fs.js';
import { normalizeTree, packageName, placeModule, publish, writeText } from './common.js';
import { ExitCode } from '../util/exit-codes.js';
import type { PackageInput } from './input.js';
import { buildBinaryRpms, rpmArch, type RpmMeta } from './rpm.js';
import { requireTools, runTool } from './tools.js';

export type Distro = 'rhel' | 'suse';
export type DiskFormat = 'iso' | 'tar' | 'dir';

export interface DriverDiskOptions extends RpmMeta {
  distro: Distro;
  format: DiskFormat;
  /** Final path: the .iso / .tar file, or the directory. */
  output: string;
  force: boolean;
  label: string;
  /** SUSE: the `<release>` of `linux/suse/<arch>-<release>` (e.g. sle15). */
  suseRelease: string;
}

/** What the disk is named by default: `<m>-<v>-dd.iso` (or .tar, or a directory `<m>-<v>-dd`). */
export function defaultDiskName(input: PackageInput, format: DiskFormat): string {
  const base = `${packageName(input.module)}-${input.version}-dd`;
  return format === 'dir' ? base : `${base}.${format}`;
}

export function formatFromName(path: string): DiskFormat | null {
  if (path.endsWith('.iso')) return 'iso';
  if (path.endsWith('.tar')) return 'tar';
  return null;
}

/** ISO 9660 volume dates are "YYYYMMDDhhmmsscc" (xorriso -volume_date uuid). */
function isoStamp(epoch: number): string {
  return new Date(epoch * 1000).toISOString().replace(/[-:T]/g, '').replace(/\.\d+Z$/, '') + '00';
}

async function layoutRhel(stage: string, tree: string, input: PackageInput, o: DriverDiskOptions): Promise<void> {
  requireTools('createrepo_c');
  await writeText(join(tree, 'rhdd3'), `Driver Update Disk: ${input.module} ${input.version}\n`);
  const rpms = await buildBinaryRpms(stage, input, o, 'kmod');
  const arches = new Set<string>();
  for (const r of rpms) {
    const arch = basename(r).replace(/\.rpm$/, '').split('.').pop()!;
    arches.add(arch);
    await mkdir(join(tree, 'rpms', arch), { recursive: true });
    await cp(r, join(tree, 'rpms', arch, basename(r)));
  }
  await normalizeTree(tree, input.epoch);
  for (const arch of [...arches].sort()) {
    // No sqlite databases (their bytes vary run to run); revision and every timestamp = the epoch.
    await runTool(
      'createrepo_c',
      ['--no-database', '--workers', '1', '--revision', String(input.epoch), '--set-timestamp-to-revision', '--quiet', join(tree, 'rpms', arch)],
      { epoch: input.epoch },
    );
  }
}

async function layoutSuse(stage: string, tree: string, input: PackageInput, o: DriverDiskOptions): Promise<string[]> {
  const warnings: string[] = [];
  const rpms = await buildBinaryRpms(stage, input, o, 'kmp');
  for (const r of rpms) {
    const arch = basename(r).replace(/\.rpm$/, '').split('.').pop()!;
    const dir = join(tree, 'linux/suse', `${arch}-${o.suseRelease}`);
    await mkdir(join(dir, 'install'), { recursive: true });
    await cp(r, join(dir, 'install', basename(r)));
  }
  // modules/ is loaded by linuxrc into the running installer: one kernel per arch can fill it.
  const byArch = new Map<string, typeof input.kernels>();
  for (const k of input.kernels) byArch.set(rpmArch(k.arch), [...(byArch.get(rpmArch(k.arch)) ?? []), k]);
  for (const [arch, ks] of byArch) {
    if (ks.length > 1) {
      warnings.push(`${arch}: ${ks.length} kernels; modules/ is left out (linuxrc loads one set), the KMPs in install/ cover every kernel.`);
      continue;
    }
    const dir = join(tree, 'linux/suse', `${arch}-${o.suseRelease}`, 'modules');
    for (const m of ks[0]!.modules) await placeModule(m, dir, '');
  }
  return warnings;
}

export interface DriverDiskResult {
  output: string;
  warnings: string[];
}

export async function mkdriverdisk(input: PackageInput, o: DriverDiskOptions): Promise<DriverDiskResult> {
  requireTools('rpmbuild', ...(o.format === 'iso' ? ['xorriso'] : o.format === 'tar' ? ['tar'] : []));
  if (!o.force && (await pathExists(o.output))) throw new KbundleError(`${o.output} exists; pass --force to replace it.`, ExitCode.OutputExists);
  if (!(await pathExists(dirname(o.output)))) throw new KbundleError(`${dirname(o.output)} does not exist.`, ExitCode.OutputExists);
  const stage = await mkdtemp(join(tmpdir(), 'kbundle-dd-'));
  try {
    const tree = join(stage, 'disk');
    await mkdir(tree);
    const warnings = o.distro === 'rhel' ? (await layoutRhel(stage, tree, input, o), []) : await layoutSuse(stage, tree, input, o);
    await normalizeTree(tree, input.epoch);
    if (o.format === 'dir') {
      const tmp = tempPathFor(o.output);
      await cp(tree, tmp, { recursive: true, preserveTimestamps: true });
      if (o.force) await rm(o.output, { recursive: true, force: true });
      await commitStagedDir(tmp, o.output);
    } else if (o.format === 'tar') {
      const file = join(stage, 'disk.tar');
      await runTool('tar', ['--sort=name', '--format=gnu', '--owner=0', '--group=0', '--numeric-owner', `--mtime=@${input.epoch}`, '-cf', file, '-C', tree, '.'], { epoch: input.epoch });
      await publish([{ from: file, to: o.output }]);
    } else {
      const file = join(stage, 'disk.iso');
      const e = `=${input.epoch}`;
      await runTool(
        'xorriso',
        [
          '-no_rc',
          '-report_about', 'WARNING',
          '-outdev', `stdio:${file}`,
          '-volid', o.label,
          '-joliet', 'on',
          '-rockridge', 'on',
          '-volume_date', 'c', e,
          '-volume_date', 'm', e,
          '-volume_date', 'x', 'default',
          '-volume_date', 'f', 'default',
          '-volume_date', 'uuid', isoStamp(input.epoch),
          '-volume_date', 'all_file_dates', e,
          '-map', tree, '/',
          '-chown_r', '0', '/', '--',
          '-chgrp_r', '0', '/', '--',
          '-commit',
        ],
        { epoch: input.epoch },
      );
      await publish([{ from: file, to: o.output }]);
    }
    return { output: o.output, warnings };
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}
