/**
 * A content-addressed build cache (in the manner of npm's cacache): file
 * contents live once under content-v1/sha256/<aa>/<rest>, an index entry per
 * cache key lists which contents make up a build. Every write is a temp file
 * plus rename, and contents are named by their digest, so concurrent
 * builders can share a cache dir: the worst race writes the same bytes twice.
 * Reads re-hash what they restore; a corrupt entry is a miss, not a bad build.
 */
import { copyFile, mkdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathExists, sha256File, siblingTemp, writeFileAtomic } from '../util/fs.js';
export class BuildCache {
    dir;
    constructor(dir) {
        this.dir = dir;
    }
    contentPath(sha) {
        return join(this.dir, 'content-v1', 'sha256', sha.slice(0, 2), sha.slice(2));
    }
    indexPath(key) {
        return join(this.dir, 'index-v1', key.slice(0, 2), `${key}.json`);
    }
    async get(key) {
        let entry;
        try {
            entry = JSON.parse(await readFile(this.indexPath(key), 'utf8'));
        }
        catch {
            return null;
        }
        for (const f of entry.files) {
            const p = this.contentPath(f.sha256);
            if (!(await pathExists(p)) || (await sha256File(p)) !== f.sha256) {
                await rm(this.indexPath(key), { force: true });
                return null;
            }
        }
        return entry;
    }
    /** Copies each cached file to <destDir>/<name>. */
    async restore(entry, destDir) {
        for (const f of entry.files) {
            const dest = join(destDir, f.name);
            await mkdir(dirname(dest), { recursive: true });
            await copyFile(this.contentPath(f.sha256), dest);
        }
    }
    /** Stores <srcDir>/<name> for each name under `key`. */
    async put(key, srcDir, names, meta) {
        const files = [];
        for (const name of names) {
            const src = join(srcDir, name);
            const sha = await sha256File(src);
            const dest = this.contentPath(sha);
            if (!(await pathExists(dest))) {
                await mkdir(dirname(dest), { recursive: true });
                const tmp = siblingTemp(dest);
                await copyFile(src, tmp);
                await rename(tmp, dest);
            }
            const { size } = await import('node:fs/promises').then((fs) => fs.stat(dest));
            files.push({ name, sha256: sha, size });
        }
        await writeFileAtomic(this.indexPath(key), JSON.stringify({ key, files, meta }));
    }
}
