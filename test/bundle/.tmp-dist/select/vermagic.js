/**
 * vermagic is `UTS_RELEASE " "` then flag tokens (SMP, preempt, mod_unload,
 * modversions, arch and RANDSTRUCT tokens; §4.1). The kernel's same_magic()
 * skips the release word only when the module has CRCs, and compares the rest
 * as a string, so tails are compared verbatim (token order and the trailing
 * space included); the token sets only serve to explain a difference.
 */
export function vermagicRelease(v) {
    const i = v.indexOf(' ');
    return i === -1 ? v : v.slice(0, i);
}
export function vermagicTail(v) {
    const i = v.indexOf(' ');
    return i === -1 ? '' : v.slice(i + 1);
}
export function vermagicFlags(v) {
    return vermagicTail(v).split(' ').filter(Boolean);
}
export function hasModversions(v) {
    return vermagicFlags(v).includes('modversions');
}
export function flagDiff(candidate, target) {
    const c = vermagicFlags(candidate);
    const t = vermagicFlags(target);
    return { onlyCandidate: c.filter((f) => !t.includes(f)), onlyTarget: t.filter((f) => !c.includes(f)) };
}
