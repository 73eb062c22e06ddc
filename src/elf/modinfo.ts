/** The `.modinfo` section: NUL-separated key=value strings, read as kmod's modinfo does. */
import { type ElfFile, findSection, parseElf, sectionData } from './elf-file.js';

export type ModinfoEntries = Array<[string, string]>;

/**
 * All key/value pairs in file order, duplicates kept (alias, parm, depends may
 * repeat). An entry without '=' becomes a key with an empty value, as in kmod.
 * A module without `.modinfo` yields [].
 */
export function readModinfo(elf: Buffer | ElfFile): ModinfoEntries {
  const file = Buffer.isBuffer(elf) ? parseElf(elf) : elf;
  const sec = findSection(file, '.modinfo');
  if (!sec) return [];
  const out: ModinfoEntries = [];
  // Strings are UTF-8 in practice (author names); padding shows up as empty strings.
  for (const s of sectionData(file, sec).toString('utf8').split('\0')) {
    if (!s) continue;
    const eq = s.indexOf('=');
    out.push(eq === -1 ? [s, ''] : [s.slice(0, eq), s.slice(eq + 1)]);
  }
  return out;
}

type Source = Buffer | ModinfoEntries;

function entries(src: Source): ModinfoEntries {
  return Buffer.isBuffer(src) ? readModinfo(src) : src;
}

/** Every value of `key`, in file order (what `modinfo -F key` prints, one per line). */
export function modinfoField(src: Source, key: string): string[] {
  return entries(src)
    .filter(([k]) => k === key)
    .map(([, v]) => v);
}

function single(src: Source, key: string): string | null {
  return modinfoField(src, key)[0] ?? null;
}

/** E.g. "6.1.0-56-amd64 SMP preempt mod_unload modversions " (the trailing space is part of it). */
export const vermagic = (src: Source): string | null => single(src, 'vermagic');
/** The kernel release a module was built for: vermagic's first word. */
export const vermagicRelease = (src: Source): string | null => vermagic(src)?.split(' ')[0] || null;
export const moduleName = (src: Source): string | null => single(src, 'name');
export const srcversion = (src: Source): string | null => single(src, 'srcversion');
export const version = (src: Source): string | null => single(src, 'version');
export const license = (src: Source): string | null => single(src, 'license');

/** Module dependencies; `depends=` (empty) means none. */
export function depends(src: Source): string[] {
  return modinfoField(src, 'depends').flatMap((v) => v.split(',').filter(Boolean));
}
