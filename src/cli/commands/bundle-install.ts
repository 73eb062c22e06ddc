/** `kbundle bundle install|plan|extract` (the air-gapped installer). */
import type { Command } from 'commander';
import type { CommonOptions } from '../options.js';

type Runner = (a: (p: string[], o: CommonOptions) => Promise<number>) => (...args: unknown[]) => Promise<void>;

export function registerBundleInstall(_bundle: Command, _run: Runner): void {
  // filled in by the installer work (issue 4)
}
