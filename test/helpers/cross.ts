// arm64 header trees for the cross-arch tests, fetched once with `kbundle headers fetch` and kept between runs.
import { join } from 'node:path';
import { installedKernels } from './kernels.js';
import { kbundle } from './scratch.js';

/** Kept between runs (CI machines are fresh anyway): a fetch is ~15 s and 100 MB of downloads. */
export const TEST_HEADERS_ROOT = process.env.KBUNDLE_TEST_HEADERS ?? '/var/cache/kbundle-test/headers';

/** The installed 6.1 amd64 kernel and its arm64 sibling (same ABI number, so the same Debian kernel build). */
export function armSibling(): { amd64: string; arm64: string } {
  const amd64 = installedKernels().find((k) => /^6\.1\.0-\d+-amd64$/.test(k));
  if (!amd64) throw new Error(`no 6.1 amd64 headers installed (found ${installedKernels().join(', ')})`);
  return { amd64, arm64: amd64.replace(/-amd64$/, '-arm64') };
}

export interface Fetched {
  kernel: string;
  arch: string;
  headers: string;
  packages: string[];
  reused: boolean;
}

export function fetchArmHeaders(kernels: string[], root = TEST_HEADERS_ROOT): Fetched[] {
  const r = kbundle(['headers', 'fetch', ...kernels, '--arch', 'arm64', '--root', root, '--json', '-q']);
  if (r.code !== 0) throw new Error(`headers fetch failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Fetched[];
}

export const headersTree = (f: Fetched) => join(f.headers, '..', '..', '..');
