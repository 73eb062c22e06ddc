/** Orders strings by their UTF-8 bytes (JS's default sort uses UTF-16 units, which differs above U+FFFF). */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
