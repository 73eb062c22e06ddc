// Shared set-up for the conf tests: confs written to a temp dir, contexts for
// the real kernels of this machine.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConfContext } from '../../src/conf/types.js';

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'kbundle-conf-'));
}

let seq = 0;
/** Writes `text` as <dir>/<name>/dkms.conf and returns its path. */
export function writeConf(dir: string, text: string, name = `m${++seq}`): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  const p = join(d, 'dkms.conf');
  writeFileSync(p, text);
  return p;
}

export function ctxFor(confPath: string, kernel: string, extra: Partial<ConfContext> = {}): ConfContext {
  return {
    confPath,
    kernelver: kernel,
    arch: 'x86_64',
    kernelSourceDir: `/lib/modules/${kernel}/build`,
    dkmsTree: '/var/lib/dkms',
    sourceTree: '/usr/src',
    installTree: '/lib/modules',
    parallelJobs: 4,
    ...extra,
  };
}

function readDotConfig(k: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const l of readFileSync(`/lib/modules/${k}/build/.config`, 'utf8').split('\n')) {
    const x = /^(CONFIG_[A-Z0-9_]+)=([ym])$/.exec(l);
    if (x) m.set(x[1]!, x[2]!);
  }
  return m;
}

/** CONFIG_* names that are y/m in kernel a's .config but not set in b's. */
export function configOnlyIn(a: string, b: string): string[] {
  const cb = readDotConfig(b);
  return [...readDotConfig(a).keys()].filter((n) => !cb.has(n)).sort();
}

/** A CONFIG_* that is y or m in both kernels. */
export function configInBoth(a: string, b: string): string {
  const cb = readDotConfig(b);
  const hit = [...readDotConfig(a).keys()].find((n) => cb.has(n));
  if (!hit) throw new Error('kernels share no CONFIG');
  return hit;
}
