/** The kernel's Kconfig result, for BUILD_EXCLUSIVE_CONFIG and $kernel_config. */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ConfContext } from './types.js';

/**
 * ctx.kernelConfig, else <ksrc>/include/config/auto.conf, else <ksrc>/.config
 * (DKMS 3.4.3 set_kernel_source_dir_and_kconfig; 3.0.10 always used .config,
 * which holds the same y/m values).
 */
export function kernelConfigPath(ctx: Pick<ConfContext, 'kernelConfig' | 'kernelSourceDir'>): string {
  if (ctx.kernelConfig) return ctx.kernelConfig;
  const auto = join(ctx.kernelSourceDir, 'include/config/auto.conf');
  return existsSync(auto) ? auto : join(ctx.kernelSourceDir, '.config');
}

/**
 * `CONFIG_X=value` lines; values keep their quotes stripped. "# CONFIG_X is
 * not set" lines are absent from the map, the same as auto.conf omits them.
 */
export function parseKernelConfig(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(CONFIG_[A-Za-z0-9_]+)=(.*?)\r?$/.exec(line);
    if (!m) continue;
    let v = m[2]!;
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1).replace(/\\(["\\])/g, '$1');
    map.set(m[1]!, v);
  }
  return map;
}

/** null when the file does not exist: DKMS then skips BUILD_EXCLUSIVE_CONFIG. */
export async function readKernelConfig(path: string): Promise<Map<string, string> | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  return parseKernelConfig(text);
}
