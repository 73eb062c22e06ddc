import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readFile } from 'node:fs/promises';
import { KbundleError } from './errors.js';

export async function pathExists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

export async function isDir(p: string): Promise<boolean> {
  try {
    return (await lstat(p)).isDirectory();
  } catch {
    return false;
  }
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A file's bytes, or a clear error naming what the file was for (`cannot read certificate /x: ENOENT…`). */
export async function readFileOrFail(path: string, what?: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new KbundleError(`cannot read ${what ? `${what} ` : ''}${path}: ${(e as Error).message}`);
  }
}
