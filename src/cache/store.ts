/**
 * A content-addressed build cache (in the manner of npm's cacache): file
 * contents live once under content-v1/sha256/<aa>/<rest>, an index entry per
 * cache key lists which contents make up a build. Every write is a temp file
 * plus rename, and contents are named by their digest, so concurrent
 * builders can share a cache dir: the worst race writes the same bytes twice.
 * Reads re-hash what they restore; a corrupt entry is a miss, not a bad build.
 */
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { copyFileDurable, writeFileDurable } from '../util/atomic.js';
import { pathExists, sha256File } from '../util/fs.js';

export interface CachedFile {
  /** Path relative to the build dir, e.g. src/alpha/twomods_alpha.ko. */
  name: string;
  sha256: string;
  size: number;
}

export interface CacheIndexEntry {
  key: string;
  files: CachedFile[];
  /** Free-form facts (kernel, module), useful when inspecting the cache. */
  meta: Record<string, string>;
}

export class BuildCache {
  constructor(readonly dir: string) {}

  private contentPath(sha: string): string {
    return join(this.dir, 'content-v1', 'sha256', sha.slice(0, 2), sha.slice(2));
  }

  private indexPath(key: string): string {
    return join(this.dir, 'index-v1', key.slice(0, 2), `${key}.json`);
  }

  async get(key: string): Promise<CacheIndexEntry | null> {
    let entry: CacheIndexEntry;
    try {
      entry = JSON.parse(await readFile(this.indexPath(key), 'utf8')) as CacheIndexEntry;
    } catch {
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
  async restore(entry: CacheIndexEntry, destDir: string): Promise<void> {
    for (const f of entry.files) {
      const dest = join(destDir, f.name);
      await mkdir(dirname(dest), { recursive: true });
      await copyFile(this.contentPath(f.sha256), dest);
    }
  }

  /** Stores <srcDir>/<name> for each name under `key`. */
  async put(key: string, srcDir: string, names: string[], meta: Record<string, string>): Promise<void> {
    const files: CachedFile[] = [];
    for (const name of names) {
      const src = join(srcDir, name);
      const sha = await sha256File(src);
      const dest = this.contentPath(sha);
      if (!(await pathExists(dest))) {
        await copyFileDurable(src, dest);
      }
      const { size } = await import('node:fs/promises').then((fs) => fs.stat(dest));
      files.push({ name, sha256: sha, size });
    }
    await writeFileDurable(this.indexPath(key), JSON.stringify({ key, files, meta } satisfies CacheIndexEntry));
  }
}
