/** DKMS's VER(): kernel versions made comparable as plain strings. */

/**
 * Every run of digits padded to at least three digits, the rest unchanged:
 * 2.6.9-1cvs200409091247 -> 002.006.009-001cvs200409091247.
 */
export function ver(v: string): string {
  return v.replace(/\d+/g, (d) => d.padStart(3, '0'));
}

/**
 * bash `[[ a < b ]]` on VER() strings. Bytewise (C locale); DKMS runs under
 * the caller's locale, which only matters for letters, not the digits and
 * dots that decide real comparisons.
 */
export function compareVer(a: string, b: string): number {
  const x = Buffer.from(ver(a));
  const y = Buffer.from(ver(b));
  return Buffer.compare(x, y);
}
