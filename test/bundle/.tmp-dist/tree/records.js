/**
 * kbundle's small JSON records kept beside DKMS's own files in
 * <m>/<v>/<k>/<a>/. DKMS ignores them; kbundle reads them so that `status`
 * never has to source a dkms.conf (DKMS sources it once per line, which is
 * what makes its status slow).
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../util/fs.js';
export const BUILD_RECORD = '.kbundle-build.json';
export async function readJsonRecord(path) {
    try {
        return JSON.parse(await readFile(path, 'utf8'));
    }
    catch (e) {
        if (e.code === 'ENOENT')
            return null;
        throw e;
    }
}
export async function writeJsonRecord(path, value) {
    await writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}
