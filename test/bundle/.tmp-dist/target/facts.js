/**
 * Everything the installer's selection needs to know about one target kernel
 * (bundle-formats.md §5.5), read from a running system or from an image root.
 * Reading an image never consults the host's /proc, /sys or uname: the image
 * will boot some other machine.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { release } from 'node:os';
import { join, resolve } from 'node:path';
import { parseKernelConfig } from '../conf/kernel-config.js';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';
import { findCompiler } from './compiler.js';
import { inTreeVermagic, moduleInventory, moduleNameFromPath } from './modules.js';
import { readSignaturePolicy } from './policy.js';
import { isHostRoot, resolveHostPath } from './rooted.js';
import { findTargetSymvers } from './symvers.js';
/**
 * The kernel to act on when none is given. An image root has no running
 * kernel, and the host's would be the wrong answer, so the caller must say.
 */
export function runningKernel(root = '/') {
    if (!isHostRoot(root)) {
        throw new KbundleError(`cannot tell which kernel the image at ${root} will run; pass -k <kernel release>`, ExitCode.Usage);
    }
    return release();
}
async function readOptionalText(path) {
    try {
        return await readFile(path, 'utf8');
    }
    catch {
        return null;
    }
}
export async function readTargetFacts(opts) {
    const root = resolve(opts.root ?? '/');
    const hostRoot = isHostRoot(root);
    const installTree = opts.installTree ?? join(root, 'lib/modules');
    const { kernel, arch } = opts;
    if (!kernel || kernel.includes('/'))
        throw new KbundleError(`invalid kernel release '${kernel}'`, ExitCode.Usage);
    const moduleDir = await resolveHostPath(root, join(installTree, kernel));
    const buildDir = await resolveHostPath(root, join(installTree, kernel, 'build'));
    const inventory = await moduleInventory(moduleDir);
    const vm = await inTreeVermagic(moduleDir, inventory.files);
    const symvers = await findTargetSymvers(kernel, root, installTree);
    const config = await readOptionalText(join(buildDir, '.config'));
    const compiler = await findCompiler({
        root,
        hostRoot,
        versionText: config === null ? null : (parseKernelConfig(config).get('CONFIG_CC_VERSION_TEXT') ?? null),
    });
    return {
        kernel,
        arch,
        vermagic: vm?.vermagic ?? null,
        vermagicSource: vm?.source ?? null,
        symvers: symvers?.entries ?? null,
        symversSource: symvers?.path ?? null,
        symversDigest: symvers?.digest ?? null,
        installedModules: new Set(inventory.files.map(moduleNameFromPath)),
        builtinModules: new Set(inventory.builtin.map(moduleNameFromPath)),
        headersPresent: existsSync(join(buildDir, 'include')),
        compilerPresent: compiler !== null,
        compiler,
        signaturePolicy: await readSignaturePolicy({ kernel, root, installTree, ...(opts.sysDir ? { sysDir: opts.sysDir } : {}) }),
    };
}
