/**
 * Original modules: a module of the same name that the kernel already has
 * (an in-tree driver our module replaces) is moved into
 * <m>/original_module/<k>/<a>/ with a .origin file naming where it came
 * from, and moved back on uninstall (DKMS >= 3.1.7 behaviour).
 */
import { lstat, readdir, readFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { removeDurable, removeIfEmpty, renameDurable, writeFileDurable } from '../util/atomic.js';
import { pathExists } from '../util/fs.js';

const MODULE_RE = (name: string) => new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.ko(\\.gz|\\.xz|\\.zst)?$`);

/** Every file named <destName>.ko[.ext] under <installTree>/<k>, not following symlinks (build/, source/). */
export async function findOriginals(kernelDir: string, destName: string, exclude: string): Promise<string[]> {
  const re = MODULE_RE(destName);
  const found: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(dir, n);
      const st = await lstat(p);
      if (st.isDirectory()) await walk(p);
      else if (st.isFile() && re.test(n) && p !== exclude) found.push(p);
    }
  };
  await walk(kernelDir);
  return found.sort();
}

/**
 * Moves originals into the archive. The first found is the original; others
 * are collisions. The .origin note is durable before the module moves, and a
 * path already moved is skipped, so a repeated call (recovery) converges.
 */
export async function archiveOriginals(originals: string[], archiveDir: string, kernelDir: string): Promise<void> {
  for (const [i, p] of originals.entries()) {
    if (!(await pathExists(p))) continue;
    const dir = i === 0 ? archiveDir : join(archiveDir, 'collisions', dirname(relative(kernelDir, p)));
    await writeFileDurable(join(dir, `${basename(p)}.origin`), `${p}\n`);
    await renameDurable(p, join(dir, basename(p)));
  }
}

/** Moves every archived module back to where its .origin says, then drops the archive. */
export async function restoreOriginals(archiveDir: string): Promise<string[]> {
  const restored: string[] = [];
  if (await pathExists(archiveDir)) await restoreArchive(archiveDir, restored);
  // Drop empty original_module/<k> and original_module parents, as DKMS leaves none (also after an interrupted restore).
  for (const d of [dirname(archiveDir), dirname(dirname(archiveDir))]) await removeIfEmpty(d);
  return restored;
}

async function restoreArchive(archiveDir: string, restored: string[]): Promise<void> {
  const walk = async (dir: string): Promise<void> => {
    for (const n of await readdir(dir)) {
      const p = join(dir, n);
      if ((await lstat(p)).isDirectory()) await walk(p);
      else if (n.endsWith('.origin')) {
        const archived = p.slice(0, -'.origin'.length);
        const origin = (await readFile(p, 'utf8')).trim();
        if (await pathExists(archived)) {
          await renameDurable(archived, origin);
          restored.push(origin);
        }
      }
    }
  };
  await walk(archiveDir);
  await removeDurable(archiveDir);
}
