/**
 * The compiler kbuild will use for a header tree. Debian's headers name it in
 * .kernelvariables (CC = $(CROSS_COMPILE)gcc-12); DKMS 3.0.10 asks make to
 * evaluate that file and exports the result, and so do we.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
const run = promisify(execFile);
const ccCache = new Map();
const versionCache = new Map();
async function evalKernelCc(kernelSourceDir) {
    const vars = join(kernelSourceDir, '.kernelvariables');
    if (!existsSync(vars))
        return null;
    const makefile = `show-%:\n\t@echo $($*)\ninclude ${vars}\n`;
    try {
        const child = run('make', ['-s', '-f', '-', 'show-CC'], { encoding: 'utf8' });
        child.child.stdin?.end(makefile);
        const cc = (await child).stdout.trim();
        return cc || null;
    }
    catch {
        return null;
    }
}
export function kernelCc(kernelSourceDir) {
    let p = ccCache.get(kernelSourceDir);
    if (!p)
        ccCache.set(kernelSourceDir, (p = evalKernelCc(kernelSourceDir)));
    return p;
}
/** `<cc> --version` (first line), the compiler's identity for the build cache. */
export function compilerVersion(cc) {
    const name = cc ?? 'gcc';
    let p = versionCache.get(name);
    if (!p) {
        p = run('/bin/sh', ['-c', `${name} --version`], { encoding: 'utf8' })
            .then((r) => r.stdout.split('\n')[0] ?? name)
            .catch(() => `unknown:${name}`);
        versionCache.set(name, p);
    }
    return p;
}
/** The environment DKMS gives make: no inherited compiler flags, CC from the headers. */
export function buildEnv(cc) {
    const env = { ...process.env };
    for (const k of ['CC', 'CXX', 'CFLAGS', 'CXXFLAGS', 'LDFLAGS', 'MAKEFLAGS', 'MFLAGS', 'MAKELEVEL'])
        delete env[k];
    if (cc)
        env.CC = cc;
    return env;
}
