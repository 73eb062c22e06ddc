/** What a kernel's module directory already holds, as depmod sees it. */
import { opendir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { readModinfo, vermagic as vermagicOf } from '../elf/modinfo.js';
import { readModule } from '../kmod/compression.js';

const MODULE_FILE = /^(.*)\.ko(\.gz|\.xz|\.zst)?$/;

/** The kernel treats '-' and '_' in module names as the same character. */
export function normalizeModuleName(name: string): string {
  return name.replace(/-/g, '_');
}

/** 'kernel/drivers/usb/core/usbcore.ko.xz' or 'drivers/usb/core/usbcore' → 'usbcore'. */
export function moduleNameFromPath(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const m = MODULE_FILE.exec(base);
  return normalizeModuleName(m ? m[1]! : base);
}

/** Module paths (relative to the kernel's module dir) listed in modules.dep. */
export function parseModulesDep(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) out.push(line.slice(0, colon).trim());
  }
  return out;
}

/** modules.builtin: one path per line. */
export function parseModulesBuiltin(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

async function readOptional(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw e;
  }
}

/**
 * Module files under `moduleDir`, relative to it. Symlinks are not followed,
 * which keeps the walk out of `build`/`source` (links to header trees).
 */
export async function walkModuleFiles(moduleDir: string): Promise<string[]> {
  const out: string[] = [];
  const stack = [moduleDir];
  while (stack.length) {
    let dir;
    try {
      dir = await opendir(stack.pop()!);
    } catch {
      continue;
    }
    for await (const ent of dir) {
      const p = join(dir.path, ent.name);
      if (ent.isDirectory()) stack.push(p);
      else if (ent.isFile() && MODULE_FILE.test(ent.name)) out.push(relative(moduleDir, p));
    }
  }
  return out.sort();
}

export interface ModuleInventory {
  /** Relative paths of loadable module files. */
  files: string[];
  /** Where `files` came from. */
  from: 'modules.dep' | 'walk';
  builtin: string[];
}

/**
 * modules.dep is what modprobe will actually resolve against, so it wins
 * when present; a tree that never saw depmod (a fresh image, a test fixture)
 * is walked instead.
 */
export async function moduleInventory(moduleDir: string): Promise<ModuleInventory> {
  const dep = await readOptional(join(moduleDir, 'modules.dep'));
  const builtinText = await readOptional(join(moduleDir, 'modules.builtin'));
  const builtin = builtinText === null ? [] : parseModulesBuiltin(builtinText);
  if (dep !== null) return { files: parseModulesDep(dep), from: 'modules.dep', builtin };
  return { files: await walkModuleFiles(moduleDir), from: 'walk', builtin };
}

/** How many in-tree modules to try before giving up on finding a vermagic (unreadable files are skipped). */
const VERMAGIC_TRIES = 8;

/**
 * The kernel does not export its vermagic; any in-tree module carries it
 * (docs/selection.md, "Facts about the target"). Only `kernel/` modules with intree=Y count: updates/ or
 * extra/ may hold modules built elsewhere with other flags.
 */
export async function inTreeVermagic(moduleDir: string, files: string[]): Promise<{ vermagic: string; source: string } | null> {
  const inTree = files.filter((f) => f.startsWith('kernel/')).sort();
  let tries = 0;
  for (const f of inTree) {
    if (tries++ >= VERMAGIC_TRIES) break;
    const path = join(moduleDir, f);
    let info;
    try {
      info = readModinfo(await readModule(path));
    } catch {
      continue;
    }
    const vm = vermagicOf(info);
    if (vm && info.some(([k, v]) => k === 'intree' && v === 'Y')) return { vermagic: vm, source: path };
  }
  return null;
}
