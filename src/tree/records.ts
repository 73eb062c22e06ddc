/**
 * kbundle's small JSON records kept beside DKMS's own files in
 * <m>/<v>/<k>/<a>/. DKMS ignores them; kbundle reads them so that `status`
 * never has to source a dkms.conf (DKMS sources it once per line, which is
 * what makes its status slow).
 */
import { readFile } from 'node:fs/promises';
import { writeFileDurable } from '../util/atomic.js';

export interface BuiltModuleRecord {
  /** DEST_MODULE_NAME (no extension). */
  destName: string;
  /** DEST_MODULE_LOCATION as written in the conf. */
  destLocation: string;
  /** File name under module/, e.g. hello.ko.xz. */
  file: string;
  /** sha256 hex of that file. */
  sha256: string;
}

export interface BuildRecord {
  format: 'kbundle-build-v1';
  module: string;
  version: string;
  kernel: string;
  arch: string;
  modules: BuiltModuleRecord[];
  /** Cache key the build was stored under / restored from. */
  cacheKey: string | null;
  fromCache: boolean;
  signed: { signer: string; keyId: string; hash: string } | null;
  compression: '' | '.gz' | '.xz' | '.zst';
}

export interface InstalledFileRecord {
  destName: string;
  /** Absolute path the module was installed to. */
  path: string;
  sha256: string;
}

export interface InstallRecord {
  format: 'kbundle-install-v1';
  files: InstalledFileRecord[];
  /** How the binary was chosen: a local build, or (bundles) exact/compatible/source. */
  selection: 'build' | 'exact' | 'compatible' | 'source';
  bundleDigest?: string;
}

export const BUILD_RECORD = '.kbundle-build.json';

export async function readJsonRecord<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** Durable (file and directory synced) before it returns: records protect the steps after them. */
export async function writeJsonRecord(path: string, value: unknown): Promise<void> {
  await writeFileDurable(path, JSON.stringify(value, null, 2) + '\n');
}
