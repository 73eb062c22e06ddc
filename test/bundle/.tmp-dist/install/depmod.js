/**
 * Real depmod against any install tree. depmod only takes a base dir that
 * contains lib/modules, so an install tree not ending in /lib/modules is
 * reached through a temporary <tmp>/lib/modules symlink. Unlike Debian's
 * dkms 3.0.10, a non-system install tree never makes us touch the system's.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
const run = promisify(execFile);
export function depmodArgs(installTree, kernel) {
    const tree = resolve(installTree);
    if (tree === '/lib/modules')
        return { base: null, args: ['-a', kernel] };
    if (tree.endsWith('/lib/modules'))
        return { base: dirname(dirname(tree)), args: ['-a', '-b', dirname(dirname(tree)), kernel] };
    return { base: null, args: [] }; // needs the symlink shim
}
export async function runDepmod(installTree, kernel) {
    const plan = depmodArgs(installTree, kernel);
    if (plan.args.length) {
        await run('depmod', plan.args);
        return;
    }
    const shim = await mkdtemp(join(tmpdir(), 'kbundle-depmod-'));
    try {
        await mkdir(join(shim, 'lib'), { recursive: true });
        await symlink(resolve(installTree), join(shim, 'lib', 'modules'));
        await run('depmod', ['-a', '-b', shim, kernel]);
    }
    finally {
        await rm(shim, { recursive: true, force: true });
    }
}
