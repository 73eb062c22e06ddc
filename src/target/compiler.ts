/**
 * Whether the compiler that built the target kernel is available, so a
 * source build can produce a loadable module (docs/selection.md, "Facts about the target"). kbuild uses the
 * compiler named in CONFIG_CC_VERSION_TEXT (Debian's headers set
 * CC = x86_64-linux-gnu-gcc-12); another gcc may build a module with other
 * flags, so only that name counts when the config names one.
 */
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { resolveHostPath } from './rooted.js';

/** 'x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0' → 'x86_64-linux-gnu-gcc-12'; clang's banner → 'clang'. */
export function compilerFromVersionText(text: string): string | null {
  if (/\bclang version\b/.test(text)) return 'clang';
  const first = text.trim().split(/\s+/)[0];
  return first && /^[A-Za-z0-9_.+-]+$/.test(first) ? first : null;
}

/** Search directories inside an image root: PATH of the host means nothing there. */
const ROOT_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export async function findCompiler(opts: { root: string; hostRoot: boolean; versionText: string | null; envPath?: string }): Promise<string | null> {
  const name = opts.versionText ? compilerFromVersionText(opts.versionText) : null;
  const names = name ? [name] : ['gcc', 'cc'];
  const dirs = opts.hostRoot ? (opts.envPath ?? process.env.PATH ?? '').split(delimiter).filter(Boolean) : ROOT_PATH;
  for (const n of names) {
    for (const d of dirs) {
      const p = opts.hostRoot ? join(d, n) : await resolveHostPath(opts.root, join(opts.root, d, n));
      try {
        await access(p, constants.X_OK);
        return p;
      } catch {
        // not here; keep looking
      }
    }
  }
  return null;
}
