/**
 * Canonical JSON: object keys sorted by their UTF-8 bytes, no insignificant
 * whitespace, UTF-8. Content addressing depends on
 * this: the same document must always serialise to the same bytes.
 */
import { byteOrder } from '../../util/byte-order.js';

/** Re-exported: bundle code sorts names the way canonical JSON sorts keys. */
export { byteOrder };

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export function canonicalJson(value: unknown): string {
  return serialise(value, '');
}

export function canonicalJsonBytes(value: unknown): Buffer {
  return Buffer.from(canonicalJson(value), 'utf8');
}

function serialise(value: unknown, path: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      // NaN/Infinity have no JSON form, and floats risk platform-dependent
      // formatting of digests' sizes; OCI only needs integers.
      if (!Number.isSafeInteger(value)) throw new TypeError(`canonical JSON: ${path || '/'} is not a safe integer (${value})`);
      return String(value);
    case 'string':
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return '[' + value.map((v, i) => serialise(v, `${path}/${i}`)).join(',') + ']';
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) throw new TypeError(`canonical JSON: ${path || '/'} is not a plain object`);
      const parts: string[] = [];
      for (const key of Object.keys(value).sort(byteOrder)) {
        const v = (value as Record<string, unknown>)[key];
        // undefined members are dropped, as JSON.stringify does, so optional
        // fields left unset do not change a digest.
        if (v === undefined) continue;
        parts.push(JSON.stringify(key) + ':' + serialise(v, `${path}/${key}`));
      }
      return '{' + parts.join(',') + '}';
    }
    default:
      throw new TypeError(`canonical JSON: ${path || '/'} has unsupported type ${typeof value}`);
  }
}
