// Real tools the signing tests compare against, and throwaway directories.
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

export function tempDir(prefix = 'kbsign-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Debian's sign-file for a kernel's series (/usr/lib/linux-kbuild-6.1, linux-kbuild-6.12.117+deb12, ...). */
export function signFileFor(kver: string): string | null {
  const series = kver.split('.').slice(0, 2).join('.');
  const dirs = readdirSync('/usr/lib').filter((d) => d === `linux-kbuild-${series}` || d.startsWith(`linux-kbuild-${series}.`));
  return dirs.length ? join('/usr/lib', dirs.sort()[0]!, 'scripts/sign-file') : null;
}

export async function run(cmd: string, args: string[], opts: { input?: Buffer } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await execa(cmd, args, { reject: false, input: opts.input, stripFinalNewline: false });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** `modinfo -F field` output as a list of values (one per line). */
export async function modinfoF(path: string, field: string): Promise<string[]> {
  const r = await run('/usr/sbin/modinfo', ['-F', field, path]);
  if (r.code !== 0) throw new Error(`modinfo failed: ${r.stderr}`);
  return r.stdout === '' ? [] : r.stdout.replace(/\n$/, '').split('\n');
}
