/**
 * The cross toolchain for a target arch: found on PATH or refused with the
 * Debian package that provides it (gcc-aarch64-linux-gnu gives
 * aarch64-linux-gnu-gcc-12, binutils-aarch64-linux-gnu gives
 * aarch64-linux-gnu-strip).
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { KbundleError } from '../util/errors.js';
import { archOfElfMachine, crossMakeVars, elfMachineName, hostArch, requireArch, sameArch } from './arch.js';
import { ExitCode } from '../util/exit-codes.js';

export function onPath(tool: string, path = process.env.PATH ?? '/usr/bin:/bin'): string | null {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, tool);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

function debianPackages(arch: string): string {
  const a = requireArch(arch);
  return `gcc-${a.triplet} binutils-${a.triplet}`;
}

/**
 * ARCH/CROSS_COMPILE for make when `arch` is not the host's ({} when it is),
 * after checking that <triplet>-gcc* and -ld exist: a missing cross compiler
 * otherwise surfaces as a make.log full of "not found" lines.
 */
export function crossMakeEnv(arch: string, host = hostArch()): Record<string, string> {
  const vars = crossMakeVars(arch, host);
  if (!vars.CROSS_COMPILE) return vars;
  const prefix = vars.CROSS_COMPILE;
  const cc = onPath(`${prefix}gcc`) ?? onPath(`${prefix}gcc-12`) ?? onPath(`${prefix}gcc-14`);
  if (!cc || !onPath(`${prefix}ld`)) {
    throw new KbundleError(`no cross toolchain for ${arch}: ${prefix}gcc or ${prefix}ld is not on PATH`, ExitCode.NoToolchain, [
      `On Debian: apt-get install ${debianPackages(arch)}`,
    ]);
  }
  return vars;
}

/**
 * The strip that understands a module of ELF machine `m`. Debian's own
 * `strip` knows only the host's formats ("file format not recognized" on an
 * AArch64 .ko); the cross binutils' <triplet>-strip does.
 */
export function stripToolFor(m: number, host = hostArch()): string {
  const arch = archOfElfMachine(m);
  if (arch === null || sameArch(arch, host)) return 'strip';
  const prefixed = `${requireArch(arch).triplet}-strip`;
  if (onPath(prefixed)) return prefixed;
  throw new KbundleError(`cannot strip a ${elfMachineName(m)} module: ${prefixed} is not on PATH`, ExitCode.NoToolchain, [`On Debian: apt-get install binutils-${requireArch(arch).triplet}`]);
}
