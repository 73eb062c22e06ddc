/**
 * vermagic is `UTS_RELEASE " "` then flag tokens (SMP, preempt, mod_unload,
 * modversions, arch and RANDSTRUCT tokens; include/linux/vermagic.h; docs/formats/kabi.md). The kernel's same_magic()
 * skips the release word only when the module has CRCs, and compares the rest
 * as a string, so tails are compared verbatim (token order and the trailing
 * space included); the token sets only serve to explain a difference.
 */
export function vermagicRelease(v: string): string {
  const i = v.indexOf(' ');
  return i === -1 ? v : v.slice(0, i);
}

export function vermagicTail(v: string): string {
  const i = v.indexOf(' ');
  return i === -1 ? '' : v.slice(i + 1);
}

export function vermagicFlags(v: string): string[] {
  return vermagicTail(v).split(' ').filter(Boolean);
}

export function hasModversions(v: string): boolean {
  return vermagicFlags(v).includes('modversions');
}

export function flagDiff(candidate: string, target: string): { onlyCandidate: string[]; onlyTarget: string[] } {
  const c = vermagicFlags(candidate);
  const t = vermagicFlags(target);
  return { onlyCandidate: c.filter((f) => !t.includes(f)), onlyTarget: t.filter((f) => !c.includes(f)) };
}
