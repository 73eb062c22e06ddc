/**
 * Reads module states out of a DKMS tree the way DKMS 3.x's module_status
 * does (dkms-reference.md §4-§5), from directory structure alone. Per-module
 * details come from kbundle's build/install records; only a tree written by
 * real dkms (no records) makes us ask the caller to evaluate its dkms.conf.
 */
import { readdir, readFile, readlink, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { isDir, pathExists } from '../util/fs.js';
import {
  builtModulesDir,
  installRecordPath,
  installedLink,
  kernelArchDir,
  originalModuleDir,
  sourceLink,
  versionDir,
  type ModuleRef,
  type Roots,
  type Target,
} from './paths.js';
import { BUILD_RECORD, readJsonRecord, type BuildRecord, type InstallRecord } from './records.js';

export type ModuleState = 'added' | 'built' | 'installed' | 'broken';

export interface StatusEntry {
  module: string;
  version: string;
  kernel: string | null;
  arch: string | null;
  state: ModuleState;
  /** DKMS's suffixes, e.g. " (original_module exists)". */
  extras: string[];
}

export interface StatusFilter {
  module?: string;
  version?: string;
  kernel?: string;
  arch?: string;
}

/** Where each module of a built m/v/k/a should be, when no kbundle record says so. */
export interface ModuleLayout {
  destName: string;
  /** Directory under <installTree>/<k>, e.g. /updates/dkms. */
  installedLocation: string;
}
export type LayoutFallback = (m: ModuleRef, t: Target) => Promise<ModuleLayout[] | null>;

const MODULE_EXTS = ['.ko', '.ko.gz', '.ko.xz', '.ko.zst'];
const KERNEL_DIR_RE = /^[0-9]+\./; // DKMS globs +([0-9]).*

/** Bash glob order under LC_COLLATE=C: plain byte order. */
const byteOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((n) => !n.startsWith('.')).sort(byteOrder);
  } catch {
    return [];
  }
}

/** DKMS's compressed_or_uncompressed: the first of <name>.ko, <name>.ko.<ext> that exists. */
export async function findModuleFile(dir: string, name: string): Promise<string | null> {
  for (const ext of MODULE_EXTS) {
    const p = join(dir, name + ext);
    if (await pathExists(p)) return p;
  }
  return null;
}

async function sameContent(a: string, b: string): Promise<boolean> {
  const [sa, sb] = await Promise.all([stat(a), stat(b)]);
  if (sa.size !== sb.size) return false;
  const [ba, bb] = await Promise.all([readFile(a), readFile(b)]);
  return ba.equals(bb);
}

export type AddedState = 'added' | 'broken' | null;

/** added: <m>/<v>/source is a link to an existing dir (or a real dir, as 3.0.10 accepts). */
export async function addedState(roots: Roots, m: ModuleRef): Promise<AddedState> {
  if (!(await isDir(versionDir(roots, m)))) return null;
  const src = sourceLink(roots, m);
  try {
    const st = await stat(src); // follows the link
    return st.isDirectory() ? 'added' : 'broken';
  } catch {
    return (await pathExists(src)) ? 'broken' : null; // dangling link
  }
}

export async function isInstalled(roots: Roots, m: ModuleRef, t: Target): Promise<boolean> {
  const link = installedLink(roots, m.module, t);
  try {
    const target = await readlink(link);
    return resolve(join(roots.dkmsTree, m.module), target) === kernelArchDir(roots, m, t);
  } catch {
    return false;
  }
}

async function builtTargets(roots: Roots, m: ModuleRef, f: StatusFilter): Promise<Target[]> {
  const out: Target[] = [];
  const vdir = versionDir(roots, m);
  const kernels = f.kernel ? [f.kernel] : (await listDir(vdir)).filter((k) => KERNEL_DIR_RE.test(k));
  for (const kernel of kernels) {
    const arches = f.arch ? [f.arch] : await listDir(join(vdir, kernel));
    for (const arch of arches) {
      if (await isDir(join(vdir, kernel, arch, 'module'))) out.push({ kernel, arch });
    }
  }
  // DKMS sorts the whole "<k>/<a>" glob, not kernel then arch.
  return out.sort((x, y) => byteOrder(`${x.kernel}/${x.arch}`, `${y.kernel}/${y.arch}`));
}

interface Check {
  builtFile: string | null;
  installedFile: string | null;
}

async function checkModules(roots: Roots, m: ModuleRef, t: Target, installed: boolean, fallback: LayoutFallback): Promise<Check[] | null> {
  const kad = kernelArchDir(roots, m, t);
  const build = await readJsonRecord<BuildRecord>(join(kad, BUILD_RECORD));
  const install = installed ? await readJsonRecord<InstallRecord>(installRecordPath(roots, m, t)) : null;
  if (build) {
    return Promise.all(
      build.modules.map(async (mod) => {
        const builtFile = (await pathExists(join(kad, 'module', mod.file))) ? join(kad, 'module', mod.file) : null;
        const rec = install?.files.find((f) => f.destName === mod.destName);
        const installedFile = rec && (await pathExists(rec.path)) ? rec.path : null;
        return { builtFile, installedFile };
      }),
    );
  }
  const layout = await fallback(m, t);
  if (!layout) return null;
  return Promise.all(
    layout.map(async (l) => ({
      builtFile: await findModuleFile(builtModulesDir(roots, m, t), l.destName),
      installedFile: installed ? await findModuleFile(join(roots.installTree, t.kernel + l.installedLocation), l.destName) : null,
    })),
  );
}

/** Every status entry matching the filter, in DKMS's order. */
export async function scanStatus(roots: Roots, filter: StatusFilter, fallback: LayoutFallback): Promise<StatusEntry[]> {
  const entries: StatusEntry[] = [];
  const modules = filter.module ? [filter.module] : await listDir(roots.dkmsTree);
  for (const module of modules) {
    const versions = filter.version ? [filter.version] : await listDir(join(roots.dkmsTree, module));
    for (const version of versions) {
      const m = { module, version };
      const added = await addedState(roots, m);
      if (!added) continue;
      if (added === 'broken') {
        entries.push({ module, version, kernel: null, arch: null, state: 'broken', extras: [] });
        continue;
      }
      const targets = await builtTargets(roots, m, filter);
      const before = entries.length;
      for (const t of targets) {
        const installed = await isInstalled(roots, m, t);
        const checks = await checkModules(roots, m, t, installed, fallback);
        // DKMS's is_module_built: a kernel dir missing any built module is not "built" at all.
        if (checks?.some((c) => !c.builtFile)) continue;
        const extras: string[] = [];
        if (await isDir(originalModuleDir(roots, module, t))) extras.push(' (original_module exists)');
        for (const c of checks ?? []) {
          if (installed && (!c.installedFile || !(await sameContent(c.builtFile!, c.installedFile)))) {
            extras.push(' (WARNING! Diff between built and installed module!)');
          }
        }
        entries.push({ module, version, kernel: t.kernel, arch: t.arch, state: installed ? 'installed' : 'built', extras });
      }
      if (entries.length === before) entries.push({ module, version, kernel: null, arch: null, state: 'added', extras: [] });
    }
  }
  return entries;
}

/** DKMS 3.x status line. */
export function formatStatusLine(e: StatusEntry): string {
  if (e.kernel === null) return `${e.module}/${e.version}: ${e.state}`;
  return `${e.module}/${e.version}, ${e.kernel}, ${e.arch}: ${e.state}${e.extras.join('')}`;
}
