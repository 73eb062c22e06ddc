/** The `.modinfo` section: NUL-separated key=value strings, read as kmod's modinfo does. */
import { findSection, parseElf, sectionData } from './elf-file.js';
/**
 * All key/value pairs in file order, duplicates kept (alias, parm, depends may
 * repeat). An entry without '=' becomes a key with an empty value, as in kmod.
 * A module without `.modinfo` yields [].
 */
export function readModinfo(elf) {
    const file = Buffer.isBuffer(elf) ? parseElf(elf) : elf;
    const sec = findSection(file, '.modinfo');
    if (!sec)
        return [];
    const out = [];
    // Strings are UTF-8 in practice (author names); padding shows up as empty strings.
    for (const s of sectionData(file, sec).toString('utf8').split('\0')) {
        if (!s)
            continue;
        const eq = s.indexOf('=');
        out.push(eq === -1 ? [s, ''] : [s.slice(0, eq), s.slice(eq + 1)]);
    }
    return out;
}
function entries(src) {
    return Buffer.isBuffer(src) ? readModinfo(src) : src;
}
/** Every value of `key`, in file order (what `modinfo -F key` prints, one per line). */
export function modinfoField(src, key) {
    return entries(src)
        .filter(([k]) => k === key)
        .map(([, v]) => v);
}
function single(src, key) {
    return modinfoField(src, key)[0] ?? null;
}
/** E.g. "6.1.0-56-amd64 SMP preempt mod_unload modversions " (the trailing space is part of it). */
export const vermagic = (src) => single(src, 'vermagic');
/** The kernel release a module was built for: vermagic's first word. */
export const vermagicRelease = (src) => vermagic(src)?.split(' ')[0] || null;
export const moduleName = (src) => single(src, 'name');
export const srcversion = (src) => single(src, 'srcversion');
export const version = (src) => single(src, 'version');
export const license = (src) => single(src, 'license');
/** Module dependencies; `depends=` (empty) means none. */
export function depends(src) {
    return modinfoField(src, 'depends').flatMap((v) => v.split(',').filter(Boolean));
}
