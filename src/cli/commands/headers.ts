/** `kbundle headers fetch`: kernel header trees for any Debian release and arch, unpacked without installing (docs/cross-arch.md). */
import type { Command } from 'commander';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { CommonOptions } from '../options.js';

type Runner = (fn: (positional: string[], o: CommonOptions) => Promise<number>) => (...args: unknown[]) => Promise<void>;
interface HeadersOptions { arch?: string; root?: string; update?: boolean; json?: boolean; quiet?: boolean }

export function defaultHeadersRoot(): string {
  return resolve(process.env.KBUNDLE_HEADERS_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'kbundle', 'headers'));
}

export function registerHeaders(program: Command, run: Runner): void {
  const group = program.command('headers').description('kernel header trees for cross-arch and many-kernel builds');
  group
    .command('fetch')
    .description('apt-get download + dpkg -x linux-headers-<release> (+ -common, + the host\'s linux-kbuild) into --root, and print the kernel source dir to build against')
    .argument('<release...>', 'kernel releases, e.g. 6.1.0-55-arm64 6.12.117+deb12-arm64')
    .option('-a, --arch <arch>', 'the headers\' arch (arm64/aarch64, amd64/x86_64, ...); default: this machine\'s')
    .option('--root <dir>', 'where header trees are kept (default $KBUNDLE_HEADERS_DIR, else ~/.cache/kbundle/headers)')
    .option('--update', 'refresh the private package lists first')
    .option('--json', 'print [{kernel, arch, headers, packages, reused}]')
    .option('-q, --quiet', 'no progress lines')
    .action(
      run(async (p, opts) => {
        const o = opts as unknown as HeadersOptions;
        const { fetchHeaders } = await import('../../headers/fetch.js');
        const res = await fetchHeaders({
          kernels: p,
          arch: o.arch,
          root: resolve(o.root ?? defaultHeadersRoot()),
          update: o.update,
          say: (l) => {
            if (!o.quiet) process.stderr.write(`${l}\n`);
          },
        });
        if (o.json) process.stdout.write(`${JSON.stringify(res, null, 2)}\n`);
        else for (const r of res) process.stdout.write(`${r.kernel} ${r.arch} ${r.headers}${r.reused ? ' (cached)' : ''}\n`);
        return 0;
      }),
    );
}
