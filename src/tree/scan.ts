/**
 * Reads module states out of a DKMS tree the way DKMS 3.x's module_status
 * does (docs/dkms-compat.md, "The DKMS tree", "dkms status"), from directory structure alone. Per-module
 * details come from kbundle's build/install records; only a tree written by
 * real dkms (no records) makes us ask the caller for its dkms.conf layout.
 *
 * The walk uses synchronous file system calls: a status run does nothing else
 * meanwhile, and a few thousand cached stat/readlink calls cost a few
 * milliseconds this way against a thread-pool round trip each otherwise.
 */
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
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
import { BUILD_RECORD, type BuildRecord, type InstallRecord } from './records.js';

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
  /**
   * DEST_MODULE_LOCATION as the conf wrote it, when known. DKMS's status also
   * looks there (possible_dest_module_locations) when it differs from the
   * distribution's location.
   */
  confLocation?: string;
}
export type LayoutFallback = (m: ModuleRef, t: Target) => Promise<ModuleLayout[] | null>;

export interface LayoutRequest {
  m: ModuleRef;
  t: Target;
}
/** Layouts for many entries at once, in request order (null: the conf could not be evaluated). */
export type LayoutBatch = (reqs: LayoutRequest[]) => Promise<(ModuleLayout[] | null)[]>;

const MODULE_EXTS = ['.ko', '.ko.gz', '.ko.xz', '.ko.zst'];
const KERNEL_DIR_RE = /^[0-9]+\./; // DKMS globs +([0-9]).*

/** Bash glob order under LC_COLLATE=C: plain byte order. */
const byteOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => !n.startsWith('.')).sort(byteOrder);
  } catch {
    return [];
  }
}

/** bash `[[ -d ]]`: follows symlinks. */
function isDirFollow(p: string): boolean {
  try {
    // No exception for the common "absent" answer: building one costs more than the stat.
    return statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;
  } catch {
    return false;
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

/** The same with bash's `[[ -e ]]` (a dangling symlink does not exist), synchronously. */
function findModuleFileSync(dir: string, name: string): string | null {
  for (const ext of MODULE_EXTS) {
    const p = join(dir, name + ext);
    if (existsSync(p)) return p;
  }
  return null;
}

function lexists(p: string): boolean {
  try {
    return lstatSync(p, { throwIfNoEntry: false }) !== undefined;
  } catch {
    return false;
  }
}

/** `diff -q a b` succeeds. */
function sameContent(a: string, b: string): boolean {
  try {
    if (statSync(a).size !== statSync(b).size) return false;
    return readFileSync(a).equals(readFileSync(b));
  } catch {
    return false;
  }
}

/**
 * The first word of the module's last `version` field as DKMS's
 * get_module_verinfo reads `modinfo` output, '' when there is none or the
 * file is no readable module (modinfo then prints nothing).
 */
async function modinfoVersionWord(path: string): Promise<string> {
  try {
    const [{ readModule }, { readModinfo }] = await Promise.all([import('../kmod/compression.js'), import('../elf/modinfo.js')]);
    const fields = readModinfo(await readModule(path)).filter(([k]) => k === 'version');
    return fields.at(-1)?.[1].split(/[ \t\n]+/).filter(Boolean)[0] ?? '';
  } catch {
    return '';
  }
}

export type AddedState = 'added' | 'broken' | null;

/** added: <m>/<v>/source is a link to an existing dir (or a real dir, as 3.0.10 accepts). */
export async function addedState(roots: Roots, m: ModuleRef): Promise<AddedState> {
  if (!(await isDir(versionDir(roots, m)))) return null;
  const src = sourceLink(roots, m);
  try {
    const st = statSync(src); // follows the link
    return st.isDirectory() ? 'added' : 'broken';
  } catch {
    return (await pathExists(src)) ? 'broken' : null; // dangling link
  }
}

function addedStateSync(roots: Roots, m: ModuleRef): AddedState {
  if (!isDirFollow(versionDir(roots, m))) return null;
  const src = sourceLink(roots, m);
  let st;
  try {
    st = statSync(src, { throwIfNoEntry: false });
  } catch {
    st = undefined;
  }
  if (st) return st.isDirectory() ? 'added' : 'broken';
  return lexists(src) ? 'broken' : null; // dangling link
}

function isInstalledSync(roots: Roots, m: ModuleRef, t: Target): boolean {
  const link = installedLink(roots, m.module, t);
  try {
    // Most entries are not installed on most kernels: ask without an exception first.
    if (!lstatSync(link, { throwIfNoEntry: false })?.isSymbolicLink()) return false;
    const target = readlinkSync(link);
    return resolve(join(roots.dkmsTree, m.module), target) === kernelArchDir(roots, m, t);
  } catch {
    return false;
  }
}

export async function isInstalled(roots: Roots, m: ModuleRef, t: Target): Promise<boolean> {
  return isInstalledSync(roots, m, t);
}

function builtTargets(roots: Roots, m: ModuleRef, f: StatusFilter): Target[] {
  const out: Target[] = [];
  const vdir = versionDir(roots, m);
  const kernels = f.kernel ? [f.kernel] : listDir(vdir).filter((k) => KERNEL_DIR_RE.test(k));
  for (const kernel of kernels) {
    const arches = f.arch ? [f.arch] : listDir(join(vdir, kernel));
    for (const arch of arches) {
      if (isDirFollow(join(vdir, kernel, arch, 'module'))) out.push({ kernel, arch });
    }
  }
  // DKMS sorts the whole "<k>/<a>" glob, not kernel then arch.
  return out.sort((x, y) => byteOrder(`${x.kernel}/${x.arch}`, `${y.kernel}/${y.arch}`));
}

function readRecord<T>(path: string): T | null {
  if (!lexists(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

interface Check {
  builtFile: string | null;
  /** Installed entries: the installed file is missing or differs from the built one. */
  differs: boolean;
}

/** A built m/v/k/a found by the walk, before its modules are checked. */
interface Pending {
  m: ModuleRef;
  t: Target;
  installed: boolean;
  build: BuildRecord | null;
}

function checksFromRecords(roots: Roots, p: Pending): Check[] {
  const kad = kernelArchDir(roots, p.m, p.t);
  const install = p.installed ? readRecord<InstallRecord>(installRecordPath(roots, p.m, p.t)) : null;
  return p.build!.modules.map((mod) => {
    const built = join(kad, 'module', mod.file);
    const builtFile = lexists(built) ? built : null;
    const rec = install?.files.find((f) => f.destName === mod.destName);
    const installedFile = rec && lexists(rec.path) ? rec.path : null;
    return { builtFile, differs: p.installed && builtFile !== null && (!installedFile || !sameContent(builtFile, installedFile)) };
  });
}

/**
 * DKMS's module_status_built_extra for one module of an installed entry:
 * find_actual_dest_module_location tries the distribution's location, then
 * the conf's own, taking the first whose module has the same modinfo
 * version as the built one; with neither it diffs against
 * <installTree>/<k>/<name> (which normally does not exist).
 */
async function installedDiffers(roots: Roots, p: Pending, l: ModuleLayout, builtFile: string): Promise<boolean> {
  const base = join(roots.installTree, p.t.kernel);
  const locations = [l.installedLocation];
  if (l.confLocation !== undefined && l.confLocation !== l.installedLocation) locations.push(l.confLocation);
  let builtVersion: string | null = null;
  for (const loc of locations) {
    const f = findModuleFileSync(base + loc, l.destName);
    if (!f) continue;
    // Equal bytes have equal versions; only a differing file needs modinfo.
    if (sameContent(builtFile, f)) return false;
    builtVersion ??= await modinfoVersionWord(builtFile);
    if ((await modinfoVersionWord(f)) === builtVersion) return true;
  }
  const f = findModuleFileSync(base, l.destName);
  return !f || !sameContent(builtFile, f);
}

async function checksFromLayout(roots: Roots, p: Pending, layout: ModuleLayout[]): Promise<Check[]> {
  const dir = builtModulesDir(roots, p.m, p.t);
  return Promise.all(
    layout.map(async (l) => {
      const builtFile = findModuleFileSync(dir, l.destName);
      return { builtFile, differs: p.installed && builtFile !== null && (await installedDiffers(roots, p, l, builtFile)) };
    }),
  );
}

/** Every status entry matching the filter, in DKMS's order. */
export async function scanStatus(roots: Roots, filter: StatusFilter, fallback: LayoutFallback): Promise<StatusEntry[]> {
  return scanStatusBatch(roots, filter, (reqs) => Promise.all(reqs.map((r) => fallback(r.m, r.t))));
}

/**
 * scanStatus with every dkms.conf layout the walk needs asked for in one
 * call, so the caller can evaluate them together (and remember them).
 */
export async function scanStatusBatch(roots: Roots, filter: StatusFilter, layouts: LayoutBatch): Promise<StatusEntry[]> {
  type Slot = { kind: 'row'; entry: StatusEntry } | { kind: 'built'; pending: Pending[]; m: ModuleRef };
  const slots: Slot[] = [];
  const needLayout: Pending[] = [];
  const modules = filter.module ? [filter.module] : listDir(roots.dkmsTree);
  for (const module of modules) {
    const versions = filter.version ? [filter.version] : listDir(join(roots.dkmsTree, module));
    for (const version of versions) {
      const m = { module, version };
      const added = addedStateSync(roots, m);
      if (!added) continue;
      if (added === 'broken') {
        slots.push({ kind: 'row', entry: { module, version, kernel: null, arch: null, state: 'broken', extras: [] } });
        continue;
      }
      const pending = builtTargets(roots, m, filter).map((t) => {
        const p: Pending = { m, t, installed: isInstalledSync(roots, m, t), build: readRecord<BuildRecord>(join(kernelArchDir(roots, m, t), BUILD_RECORD)) };
        if (!p.build) needLayout.push(p);
        return p;
      });
      slots.push({ kind: 'built', pending, m });
    }
  }

  const resolved = new Map<Pending, ModuleLayout[] | null>();
  if (needLayout.length) {
    const got = await layouts(needLayout.map((p) => ({ m: p.m, t: p.t })));
    needLayout.forEach((p, i) => resolved.set(p, got[i] ?? null));
  }

  const entries: StatusEntry[] = [];
  for (const slot of slots) {
    if (slot.kind === 'row') {
      entries.push(slot.entry);
      continue;
    }
    const before = entries.length;
    for (const p of slot.pending) {
      let checks: Check[] | null;
      if (p.build) checks = checksFromRecords(roots, p);
      else {
        const layout = resolved.get(p) ?? null;
        checks = layout ? await checksFromLayout(roots, p, layout) : null;
      }
      // DKMS's is_module_built: a kernel dir missing any built module is not "built" at all.
      if (checks?.some((c) => !c.builtFile)) continue;
      const extras: string[] = [];
      if (isDirFollow(originalModuleDir(roots, p.m.module, p.t))) extras.push(' (original_module exists)');
      for (const c of checks ?? []) if (c.differs) extras.push(' (WARNING! Diff between built and installed module!)');
      entries.push({ module: p.m.module, version: p.m.version, kernel: p.t.kernel, arch: p.t.arch, state: p.installed ? 'installed' : 'built', extras });
    }
    if (entries.length === before) entries.push({ module: slot.m.module, version: slot.m.version, kernel: null, arch: null, state: 'added', extras: [] });
  }
  return entries;
}

/** DKMS 3.x status line. */
export function formatStatusLine(e: StatusEntry): string {
  if (e.kernel === null) return `${e.module}/${e.version}: ${e.state}`;
  return `${e.module}/${e.version}, ${e.kernel}, ${e.arch}: ${e.state}${e.extras.join('')}`;
}
