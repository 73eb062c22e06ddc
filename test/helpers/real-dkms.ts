// Debian's real dkms (3.0.10), the reference kbundle is compared against.
// It hard-codes /etc/dkms and /var/lib/dkms/mok.key, so it runs in a private
// mount namespace where both are bind-mounted from the scratch root: the
// machine's own DKMS config and keys are never read or written.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { RunResult, Scratch } from './scratch.js';

export const haveDkms = existsSync('/usr/sbin/dkms');

export function realDkms(s: Scratch, args: string[]): RunResult {
  const varDir = join(s.root, 'real-dkms-var');
  mkdirSync(varDir, { recursive: true });
  mkdirSync(s.etcDir, { recursive: true });
  const script = 'mount --bind "$1" /etc/dkms && mount --bind "$2" /var/lib/dkms && shift 2 && exec /usr/sbin/dkms "$@"';
  const r = spawnSync('unshare', ['-m', 'sh', '-c', script, 'sh', s.etcDir, varDir, ...args, ...s.treeArgs, '--no-depmod'], {
    encoding: 'utf8',
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
