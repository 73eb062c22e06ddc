/**
 * One table for every way an architecture is spelled: `uname -m` (what DKMS
 * and the DKMS tree use), kbuild's ARCH (arch/<ARCH>/ in the kernel tree),
 * the ELF e_machine of its modules (elf(5), include/uapi/linux/elf-em.h),
 * Debian's architecture name and the GNU triplet its cross toolchain uses
 * (gcc-aarch64-linux-gnu installs aarch64-linux-gnu-gcc-12).
 */
import { machine as hostUname } from 'node:os';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';

export interface ArchInfo {
  /** `uname -m` spelling, as the DKMS tree's <kernel>/<arch> directories use. */
  uname: string;
  /** kbuild's ARCH= */
  kbuild: string;
  /** ELF e_machine value of the arch's kernel modules. */
  elfMachine: number;
  /** readelf -h's "Machine:" wording, for messages. */
  elfName: string;
  /** Debian architecture (dpkg --print-architecture). */
  debian: string;
  /** GNU triplet: prefix of the cross tools (CROSS_COMPILE=<triplet>-). */
  triplet: string;
  /** The kernel .config symbol only this arch sets. */
  configSymbol: string;
}

const TABLE: ArchInfo[] = [
  { uname: 'x86_64', kbuild: 'x86', elfMachine: 62, elfName: 'X86-64', debian: 'amd64', triplet: 'x86_64-linux-gnu', configSymbol: 'CONFIG_X86_64' },
  { uname: 'aarch64', kbuild: 'arm64', elfMachine: 183, elfName: 'AArch64', debian: 'arm64', triplet: 'aarch64-linux-gnu', configSymbol: 'CONFIG_ARM64' },
  { uname: 'i686', kbuild: 'x86', elfMachine: 3, elfName: 'Intel 80386', debian: 'i386', triplet: 'i686-linux-gnu', configSymbol: 'CONFIG_X86_32' },
  { uname: 'armv7l', kbuild: 'arm', elfMachine: 40, elfName: 'ARM', debian: 'armhf', triplet: 'arm-linux-gnueabihf', configSymbol: 'CONFIG_ARM' },
  { uname: 'ppc64le', kbuild: 'powerpc', elfMachine: 21, elfName: 'PowerPC64', debian: 'ppc64el', triplet: 'powerpc64le-linux-gnu', configSymbol: 'CONFIG_PPC64' },
  { uname: 's390x', kbuild: 's390', elfMachine: 22, elfName: 'IBM S/390', debian: 's390x', triplet: 's390x-linux-gnu', configSymbol: 'CONFIG_S390' },
  { uname: 'riscv64', kbuild: 'riscv', elfMachine: 243, elfName: 'RISC-V', debian: 'riscv64', triplet: 'riscv64-linux-gnu', configSymbol: 'CONFIG_RISCV' },
  { uname: 'loongarch64', kbuild: 'loongarch', elfMachine: 258, elfName: 'LoongArch', debian: 'loong64', triplet: 'loongarch64-linux-gnu', configSymbol: 'CONFIG_LOONGARCH' },
];

/** Other spellings people (and the manifest schema) use for the same arch. */
const ALIASES: Record<string, string> = { arm64: 'aarch64', amd64: 'x86_64', i386: 'i686', armhf: 'armv7l', ppc64el: 'ppc64le', loong64: 'loongarch64' };

/** The table row for any spelling, or null. */
export function archInfo(name: string): ArchInfo | null {
  const u = ALIASES[name] ?? name;
  return TABLE.find((a) => a.uname === u) ?? null;
}

export function requireArch(name: string): ArchInfo {
  const a = archInfo(name);
  if (!a) throw new KbundleError(`unknown architecture "${name}" (known: ${TABLE.map((t) => t.uname).join(', ')}, or ${Object.keys(ALIASES).join(', ')})`, ExitCode.UnknownArch);
  return a;
}

/** `uname -m` spelling of any accepted name (arm64 → aarch64); unknown names are returned unchanged. */
export function canonicalArch(name: string): string {
  return archInfo(name)?.uname ?? name;
}

export function sameArch(a: string, b: string): boolean {
  return canonicalArch(a) === canonicalArch(b);
}

export function hostArch(): string {
  return canonicalArch(hostUname());
}

/** readelf's name for an e_machine value ("AArch64"), or "machine <n>". */
export function elfMachineName(m: number): string {
  return TABLE.find((a) => a.elfMachine === m)?.elfName ?? `machine ${m}`;
}

/** The arch (`uname -m`) whose modules carry this e_machine; null when several or none do (EM_386 is i686 here). */
export function archOfElfMachine(m: number): string | null {
  return TABLE.find((a) => a.elfMachine === m)?.uname ?? null;
}

/**
 * What make needs to build for `arch` on this host: nothing for the host's
 * own arch (DKMS's behaviour), else ARCH and CROSS_COMPILE the way the
 * kernel's Documentation/kbuild/kbuild.rst describes them.
 */
export function crossMakeVars(arch: string, host = hostArch()): Record<string, string> {
  if (sameArch(arch, host)) return {};
  const a = requireArch(arch);
  return { ARCH: a.kbuild, CROSS_COMPILE: `${a.triplet}-` };
}
