import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
export async function pathExists(p) {
    try {
        await lstat(p);
        return true;
    }
    catch {
        return false;
    }
}
export async function isDir(p) {
    try {
        return (await lstat(p)).isDirectory();
    }
    catch {
        return false;
    }
}
/** A temp name in the same directory, so a rename onto the final name is atomic. */
export function siblingTemp(path) {
    return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}
/** Write then rename: readers see the old file or the new one, never half. */
export async function writeFileAtomic(path, data, mode = 0o644) {
    await mkdir(dirname(path), { recursive: true });
    const tmp = siblingTemp(path);
    try {
        await writeFile(tmp, data, { mode });
        await rename(tmp, path);
    }
    catch (e) {
        await rm(tmp, { force: true });
        throw e;
    }
}
export async function sha256File(path) {
    const h = createHash('sha256');
    for await (const chunk of createReadStream(path))
        h.update(chunk);
    return h.digest('hex');
}
export function sha256(data) {
    return createHash('sha256').update(data).digest('hex');
}
