/**
 * A digest of a module source tree: paths, types, exec bits, file contents
 * and symlink targets, in byte order. mtimes and owners are left out on
 * purpose, so a fresh checkout of the same source hits the cache.
 */
import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
export async function digestTree(root) {
    const h = createHash('sha256');
    const walk = async (rel) => {
        const names = (await readdir(join(root, rel))).sort();
        for (const name of names) {
            const r = rel ? `${rel}/${name}` : name;
            const p = join(root, r);
            const st = await lstat(p);
            if (st.isSymbolicLink()) {
                h.update(`l\0${r}\0${await readlink(p)}\0`);
            }
            else if (st.isDirectory()) {
                h.update(`d\0${r}\0`);
                await walk(r);
            }
            else if (st.isFile()) {
                const data = await readFile(p);
                h.update(`f\0${r}\0${st.mode & 0o111 ? 'x' : '-'}\0${data.length}\0`);
                h.update(data);
            }
        }
    };
    await walk('');
    return h.digest('hex');
}
