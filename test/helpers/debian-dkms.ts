// Real Debian *-dkms packages, fetched with apt and unpacked once per cache dir,
// so conf tests run against the confs users actually have.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export function testCacheDir(): string {
  return process.env.KBUNDLE_TEST_CACHE || '/tmp/kbundle-test-cache';
}

/**
 * /usr/src/<m>-<v> inside the unpacked package. Downloads with
 * `apt-get download` (needs `apt-get update` to have run) and `dpkg -x`;
 * concurrent test files share the result through an atomic rename.
 */
export async function debianDkmsSource(pkg: string): Promise<string> {
  const base = join(testCacheDir(), 'debian-dkms');
  const done = join(base, pkg);
  if (!existsSync(done)) {
    const work = join(base, `.${pkg}.${process.pid}`);
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    execFileSync('apt-get', ['download', pkg], { cwd: work, stdio: ['ignore', 'ignore', 'pipe'] });
    const deb = readdirSync(work).find((n) => n.endsWith('.deb'));
    if (!deb) throw new Error(`apt-get download ${pkg} produced no .deb`);
    execFileSync('dpkg', ['-x', deb, 'root'], { cwd: work });
    try {
      renameSync(work, done);
    } catch {
      // another worker won the race; its copy is identical
      rmSync(work, { recursive: true, force: true });
    }
  }
  const src = join(done, 'root/usr/src');
  const dirs = readdirSync(src).filter((n) => existsSync(join(src, n, 'dkms.conf')));
  if (dirs.length !== 1) throw new Error(`${pkg}: expected one /usr/src/<m>-<v> with a dkms.conf, found ${dirs.join(', ') || 'none'}`);
  return join(src, dirs[0]!);
}
