// Kernel header sets installed on this machine (.ci/run installs them with apt).
import { existsSync, readdirSync } from 'node:fs';

/** Every kernel release under /lib/modules that has usable headers. */
export function installedKernels(): string[] {
  let names: string[] = [];
  try {
    names = readdirSync('/lib/modules');
  } catch {
    return [];
  }
  return names
    .filter((k) => existsSync(`/lib/modules/${k}/build/include`) && existsSync(`/lib/modules/${k}/build/Makefile`))
    .sort();
}

/**
 * Two kernels from different series (e.g. 6.1 and 6.12) when available; tests
 * that need two header sets use these. Throws when fewer than two exist so a
 * test cannot pass vacuously.
 */
export function twoKernels(): [string, string] {
  const ks = installedKernels();
  const series = (k: string) => k.split('.').slice(0, 2).join('.');
  const a = ks.find((k) => series(k) === '6.1') ?? ks[0];
  const b = ks.find((k) => series(k) !== series(a ?? '')) ?? ks.find((k) => k !== a);
  if (!a || !b) throw new Error(`need two kernel header sets in /lib/modules, found: ${ks.join(', ') || 'none'}`);
  return [a, b];
}
