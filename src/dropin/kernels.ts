/**
 * Which kernels Debian's common.postinst builds a package's module for, and
 * the lines it prints about them. Pure: the caller reads the directories.
 */
import { compareDebianVersions } from './debian-version.js';

/** `ls -v` order (GNU version sort): digit runs compare as numbers. */
export function versionSort(names: string[]): string[] {
  const parts = (s: string) => s.match(/\d+|\D+/g) ?? [];
  return [...names].sort((a, b) => {
    const x = parts(a);
    const y = parts(b);
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      const p = x[i]!;
      const q = y[i]!;
      if (p === q) continue;
      if (/^\d/.test(p) && /^\d/.test(q)) return Number(p) - Number(q) || p.length - q.length;
      return p < q ? -1 : 1;
    }
    return x.length - y.length;
  });
}

/**
 * The newest kernel among /boot/config-<kernel> names, as common.postinst's
 * _get_newest_kernel_debian: each name is cut into VERSION (up to the first
 * `-`) and ABI (the next field), and the first one at least as new as the
 * running kernel's VERSION-ABI starts the search; '' when none is.
 */
export function newestKernel(bootConfigKernels: string[], currentKernel: string): string {
  const curVersion = currentKernel.split('-')[0]!;
  const afterFirst = currentKernel.includes('-') ? currentKernel.slice(currentKernel.indexOf('-') + 1) : currentKernel;
  const curAbi = afterFirst.split('-')[0]!;
  let newest = '';
  let newestVA = '';
  for (const kernel of bootConfigKernels) {
    const version = kernel.split('-')[0]!;
    const rest = kernel.includes('-') ? kernel.slice(kernel.indexOf('-') + 1) : kernel;
    const abi = rest.split('-')[0]!;
    const compareTo = newest ? newestVA : `${curVersion}-${curAbi}`;
    if (compareDebianVersions(`${version}-${abi}`, compareTo) >= 0) {
      newest = kernel;
      newestVA = `${version}-${abi}`;
    }
  }
  return newest;
}

export interface KernelChoice {
  kernels: string[];
  /** The kernels came from `ls /lib/modules` (one per line) rather than a space-joined pair. */
  listed: boolean;
  /** Lines printed while choosing. */
  notes: string[];
}

/**
 * common.postinst's choice: every kernel in /lib/modules when
 * autoinstall_all_kernels is set; otherwise the running kernel (and the newest
 * if that differs) when the running kernel is installed; otherwise (a chroot)
 * all kernels on a first installation, or just the newest on an upgrade.
 */
export function chooseKernels(input: {
  installed: string[];
  current: string;
  newest: string;
  allKernels: boolean;
  upgrade: boolean;
}): KernelChoice {
  const all: KernelChoice = { kernels: versionSort(input.installed), listed: true, notes: [] };
  if (input.allKernels) return all;
  if (input.installed.includes(input.current)) {
    const kernels = input.newest && input.newest !== input.current ? [input.current, input.newest] : [input.current];
    return { kernels, listed: false, notes: [] };
  }
  const notes = [`It is likely that ${input.current} belongs to a chroot's host`];
  if (input.newest && input.upgrade) return { kernels: [input.newest], listed: false, notes };
  return { ...all, notes };
}

/** "Building for a, b and c" (a listed set) or "Building for a b" (a pair), as the script's tr/sed make it. */
export function buildingForLine(choice: KernelChoice): string {
  if (!choice.listed || choice.kernels.length < 2) return `Building for ${choice.kernels.join(' ')}`;
  const k = choice.kernels;
  return `Building for ${k.slice(0, -1).join(', ')} and ${k[k.length - 1]}`;
}
