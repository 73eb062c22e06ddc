/**
 * Original modules: a module of the same name that the kernel already has
 * (an in-tree driver our module replaces) is moved into
 * <m>/original_module/<k>/<a>/ with a .origin file naming where it came
 * from, and moved back on uninstall (DKMS >= 3.1.7 behaviour).
 */
import { lstat, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { pathExists } from '../util/fs.js';
const MODULE_RE = (name) => new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.ko(\\.gz|\\.xz|\\.zst)?$`);
/** Every file named <destName>.ko[.ext] under <installTree>/<k>, not following symlinks (build/, source/). */
export async function findOriginals(kernelDir, destName, exclude) {
    const re = MODULE_RE(destName);
    const found = [];
    const walk = async (dir) => {
        let names;
        try {
            names = await readdir(dir);
        }
        catch {
            return;
        }
        for (const n of names) {
            const p = join(dir, n);
            const st = await lstat(p);
            if (st.isDirectory())
                await walk(p);
            else if (st.isFile() && re.test(n) && p !== exclude)
                found.push(p);
        }
    };
    await walk(kernelDir);
    return found.sort();
}
/** Moves originals into the archive. The first found is the original; others are collisions. */
export async function archiveOriginals(originals, archiveDir, kernelDir) {
    for (const [i, p] of originals.entries()) {
        const dir = i === 0 ? archiveDir : join(archiveDir, 'collisions', dirname(relative(kernelDir, p)));
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, `${basename(p)}.origin`), `${p}\n`);
        await rename(p, join(dir, basename(p)));
    }
}
/** Moves every archived module back to where its .origin says, then drops the archive. */
export async function restoreOriginals(archiveDir) {
    if (!(await pathExists(archiveDir)))
        return [];
    const restored = [];
    const walk = async (dir) => {
        for (const n of await readdir(dir)) {
            const p = join(dir, n);
            if ((await lstat(p)).isDirectory())
                await walk(p);
            else if (n.endsWith('.origin')) {
                const archived = p.slice(0, -'.origin'.length);
                const origin = (await readFile(p, 'utf8')).trim();
                if (await pathExists(archived)) {
                    await mkdir(dirname(origin), { recursive: true });
                    await rename(archived, origin);
                    restored.push(origin);
                }
            }
        }
    };
    await walk(archiveDir);
    await rm(archiveDir, { recursive: true, force: true });
    // Drop empty original_module/<k> and original_module parents, as DKMS leaves none.
    for (const d of [dirname(archiveDir), dirname(dirname(archiveDir))]) {
        try {
            if ((await readdir(d)).length === 0)
                await rm(d, { recursive: true });
        }
        catch {
            // already gone
        }
    }
    return restored;
}
