// A throwaway system layout (dkms tree, source tree, install tree) so tests
// never touch the machine's /var/lib/dkms, /usr/src or /lib/modules.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const REPO = resolve(import.meta.dirname, '..', '..');
export const BIN = join(REPO, 'bin', 'kbundle');

export interface Scratch {
  root: string;
  dkmsTree: string;
  sourceTree: string;
  installTree: string;
  etcDir: string;
  /** Options that point kbundle (or real dkms) at this scratch layout. */
  treeArgs: string[];
}

export function makeScratch(kernels: string[], opts: { withKernelModules?: boolean } = {}): Scratch {
  const root = mkdtempSync(join(tmpdir(), 'kbundle-test-'));
  const s: Scratch = {
    root,
    dkmsTree: join(root, 'var/lib/dkms'),
    sourceTree: join(root, 'usr/src'),
    installTree: join(root, 'lib/modules'),
    etcDir: join(root, 'etc/dkms'),
    treeArgs: [],
  };
  s.treeArgs = ['--dkmstree', s.dkmsTree, '--sourcetree', s.sourceTree, '--installtree', s.installTree];
  for (const d of [s.dkmsTree, s.sourceTree, s.installTree, s.etcDir]) mkdirSync(d, { recursive: true });
  for (const k of kernels) {
    mkdirSync(join(s.installTree, k), { recursive: true });
    symlinkSync(`/lib/modules/${k}/build`, join(s.installTree, k, 'build'));
    if (opts.withKernelModules !== false) seedKernelModule(s, k);
  }
  return s;
}

/**
 * Copies one real in-tree module of kernel k (if the machine has its modules)
 * so the scratch tree compresses modules the way that kernel does.
 */
export function seedKernelModule(s: Scratch, k: string): string | null {
  const dir = `/lib/modules/${k}/kernel/drivers/net`;
  let name: string | undefined;
  try {
    name = readdirSync(dir).find((n) => /^dummy\.ko/.test(n));
  } catch {
    return null;
  }
  if (!name) return null;
  const dest = join(s.installTree, k, 'kernel/drivers/net', name);
  mkdirSync(join(s.installTree, k, 'kernel/drivers/net'), { recursive: true });
  cpSync(join(dir, name), dest);
  return dest;
}

/** Copies a module source (bundles/ or test/fixtures/) into the scratch source tree as <m>-<v>. */
export function addSource(s: Scratch, from: string, as?: string): string {
  const src = resolve(REPO, from);
  const dest = join(s.sourceTree, as ?? src.split('/').pop()!);
  cpSync(src, dest, { recursive: true });
  return dest;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Bundle builds cache under ~/.cache by default; tests keep theirs in a scratch dir. */
const TEST_BUILD_CACHE = join(process.env.KBUNDLE_TEST_CACHE || '/tmp/kbundle-test-cache', 'build-cache');

export function kbundle(args: string[], env: NodeJS.ProcessEnv = {}): RunResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { KBUNDLE_CACHE_DIR: TEST_BUILD_CACHE, ...process.env, ...env },
    maxBuffer: 64 << 20,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): RunResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
