/**
 * POST_ADD, PRE_INSTALL, POST_INSTALL, POST_REMOVE: DKMS runs
 * "<source dir>/<script> args" (word-split, not eval'd) from the source dir.
 * A script that is missing or not executable only earns a warning.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
export async function runModuleScript(ctx, what, value, sourceDir, env = {}) {
    if (!value)
        return 0;
    const [first, ...args] = value.trim().split(/\s+/);
    if (!first)
        return 0;
    const path = first.startsWith('/') ? first : join(sourceDir, first);
    try {
        accessSync(path, constants.X_OK);
    }
    catch {
        ctx.warn(`The ${what} script is not executable or missing: ${path}`);
        return 0;
    }
    ctx.say(`Running the ${what} script:`);
    return new Promise((resolve) => {
        const child = spawn(path, args, {
            cwd: sourceDir,
            env: { ...process.env, ...env },
            stdio: ['ignore', ctx.quiet ? 'ignore' : 'inherit', ctx.quiet ? 'ignore' : 'inherit'],
        });
        child.on('error', () => resolve(127));
        child.on('close', (c) => resolve(c ?? 1));
    });
}
