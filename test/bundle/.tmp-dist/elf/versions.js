/**
 * `__versions`: the CRC a module expects for every symbol it imports
 * (struct modversion_info { unsigned long crc; char name[64 - sizeof(long)]; }).
 * In a .ko these are plain data — modpost writes them as constants into
 * *.mod.c and no relocation section applies to `__versions` — so no
 * relocation processing is needed.
 */
import { KbundleError } from '../util/errors.js';
import { findSection, parseElf, sectionData } from './elf-file.js';
/** Record size is 64 bytes on both 32- and 64-bit targets (MODULE_NAME_LEN = 64 - sizeof(long)). */
const MODVERSION_INFO_SIZE = 64;
export function readVersions(elf) {
    const file = Buffer.isBuffer(elf) ? parseElf(elf) : elf;
    const sec = findSection(file, '__versions');
    if (!sec)
        return [];
    const data = sectionData(file, sec);
    if (data.length % MODVERSION_INFO_SIZE !== 0)
        throw new KbundleError(`malformed __versions section: ${data.length} bytes is not a multiple of ${MODVERSION_INFO_SIZE}`);
    const longSize = file.header.elfClass === 64 ? 8 : 4;
    const le = file.header.endian === 'le';
    const out = [];
    for (let off = 0; off < data.length; off += MODVERSION_INFO_SIZE) {
        // The low 32 bits sit at offset 0 (LE) or at the end of the long (BE).
        const lowAt = le ? off : off + longSize - 4;
        const crc = le ? data.readUInt32LE(lowAt) : data.readUInt32BE(lowAt);
        const nameStart = off + longSize;
        const nameEnd = off + MODVERSION_INFO_SIZE;
        const nul = data.indexOf(0, nameStart);
        const symbol = data.toString('latin1', nameStart, nul === -1 || nul > nameEnd ? nameEnd : nul);
        if (symbol)
            out.push({ symbol, crc });
    }
    return out;
}
/** `0x%08x`, as modprobe --dump-modversions and Module.symvers print CRCs. */
export function formatCrc(crc) {
    return `0x${crc.toString(16).padStart(8, '0')}`;
}
