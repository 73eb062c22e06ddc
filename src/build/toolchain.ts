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
const ccCache = new Map<string, Promise<string | null>>();
const versionCache = new Map<string, Promise<string>>();

async function evalKernelCc(kernelSourceDir: string, crossCompile: string): Promise<string | null> {
  const vars = join(kernelSourceDir, '.kernelvariables');
  if (!existsSync(vars)) return null;
  const makefile = `show-%:\n\t@echo $($*)\ninclude ${vars}\n`;
  try {
    // CROSS_COMPILE as make will see it: Debian's CC is $(CROSS_COMPILE)gcc-12.
    const child = run('make', ['-s', '-f', '-', 'show-CC', ...(crossCompile ? [`CROSS_COMPILE=${crossCompile}`] : [])], { encoding: 'utf8' });
    child.child.stdin?.end(makefile);
    const cc = (await child).stdout.trim();
    return cc || null;
  } catch {
    return null;
  }
}

export function kernelCc(kernelSourceDir: string, crossCompile = ''): Promise<string | null> {
  const key = `${crossCompile}\0${kernelSourceDir}`;
  let p = ccCache.get(key);
  if (!p) ccCache.set(key, (p = evalKernelCc(kernelSourceDir, crossCompile)));
  return p;
}

/** `<cc> --version` (first line), the compiler's identity for the build cache. */
export function compilerVersion(cc: string | null): Promise<string> {
  const name = cc ?? 'gcc';
  let p = versionCache.get(name);
  if (!p) {
    // pahole writes the modules' BTF, so its version is part of the toolchain too.
    p = run('/bin/sh', ['-c', `${name} --version | head -n1; pahole --version 2>/dev/null || true`], { encoding: 'utf8' })
      .then((r) => r.stdout.trim() || name)
      .catch(() => `unknown:${name}`);
    versionCache.set(name, p);
  }
  return p;
}

/** The environment DKMS gives make: no inherited compiler flags, CC from the headers. */
export function buildEnv(cc: string | null): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['CC', 'CXX', 'CFLAGS', 'CXXFLAGS', 'LDFLAGS', 'MAKEFLAGS', 'MFLAGS', 'MAKELEVEL']) delete env[k];
  if (cc) env.CC = cc;
  return env;
}
