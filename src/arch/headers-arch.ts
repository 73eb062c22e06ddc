/**
 * Which arch a kernel header tree is for, from the tree itself: its .config
 * (CONFIG_ARM64=y, CONFIG_X86_64=y: arch/<arch>/Kconfig), else the
 * generated include/generated/autoconf.h that kbuild writes from it. The
 * release name ("-arm64", "-amd64") is only Debian's convention and is not
 * trusted.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The uname -m arch of the symbols a .config / autoconf.h text sets, or null. */
export function archFromConfigText(text: string): string | null {
  const set = (sym: string) => new RegExp(`^(?:${sym}=y|#define ${sym} 1)$`, 'm').test(text);
  // Order matters: 64-bit x86 also sets CONFIG_X86, arm64 never sets CONFIG_ARM.
  if (set('CONFIG_X86_64')) return 'x86_64';
  if (set('CONFIG_ARM64')) return 'aarch64';
  if (set('CONFIG_X86_32')) return 'i686';
  if (set('CONFIG_ARM')) return 'armv7l';
  if (set('CONFIG_PPC64') && set('CONFIG_CPU_LITTLE_ENDIAN')) return 'ppc64le';
  if (set('CONFIG_S390')) return 's390x';
  if (set('CONFIG_RISCV') && set('CONFIG_64BIT')) return 'riscv64';
  if (set('CONFIG_LOONGARCH')) return 'loongarch64';
  return null;
}

function readOr(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** The arch of the header tree at `dir`, or null when neither file says. */
export function archOfHeaders(dir: string): string | null {
  for (const f of ['.config', 'include/generated/autoconf.h']) {
    const text = readOr(join(dir, f));
    const a = text === null ? null : archFromConfigText(text);
    if (a) return a;
  }
  return null;
}
