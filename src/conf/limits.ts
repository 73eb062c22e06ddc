/**
 * Bounds on what a dkms.conf may hand kbundle. A conf is a bash program and
 * DKMS trusts it completely; kbundle runs the same program but refuses
 * results no real package needs, so a hostile or corrupt conf ends in a
 * clear exit 8 instead of minutes of CPU or gigabytes of memory. The figures
 * and their reasons are in docs/dkms-conf.md ("Limits").
 */
import { readFileSync, statSync } from 'node:fs';
import { KbundleError } from '../util/errors.js';
import { ExitCode } from '../util/exit-codes.js';

export const CONF_LIMITS = {
  /** One sourced file: the conf or an override file. */
  fileBytes: 1024 * 1024,
  /** One element of a whitelisted variable, after both expansion passes. */
  valueBytes: 64 * 1024,
  /** Highest array index of a whitelisted variable. */
  maxIndex: 1023,
  /** Everything bash reports back for one read (values and regex verdicts). */
  outputBytes: 4 * 1024 * 1024,
  /** Captured stderr kept (the rest is dropped, not buffered). */
  stderrBytes: 1024 * 1024,
  /** `bash -n`, and the sourcing run, each. */
  timeoutMs: 60_000,
  /** Nested `${` / `$(` openers. */
  nesting: 128,
  /** Address space the sourcing bash (and what it runs) may add to what it maps at start, in KiB. */
  memoryKiB: 512 * 1024,
} as const;

const MIB = 1024 * 1024;
const size = (n: number): string => (n % MIB === 0 ? `${n / MIB} MiB` : `${n / 1024} KiB`);

/** A value kbundle did not keep because it broke a limit. */
export interface RejectedRecord {
  name: string;
  /** As bash printed it (bash wraps huge subscripts to 64 bits). */
  index: string;
  kind: 'index' | 'value';
  bytes: number;
}

/**
 * Refuses a file to source that is not a regular file (a FIFO or
 * /dev/zero would block `bash -n` forever) or is larger than any conf needs.
 */
export function checkConfFile(path: string): void {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw new KbundleError(`${path}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, ExitCode.BadConf);
  }
  if (!st.isFile()) throw new KbundleError(`${path}: not a regular file; a dkms.conf must be one.`, ExitCode.BadConf);
  if (st.size > CONF_LIMITS.fileBytes) {
    throw new KbundleError(`${path}: ${st.size} bytes; kbundle refuses a dkms.conf over ${size(CONF_LIMITS.fileBytes)}.`, ExitCode.BadConf);
  }
  const line = tooDeep(readFileSync(path, 'latin1'));
  if (line) {
    throw new KbundleError(`${path}:${line}: \${ or $( nested more than ${CONF_LIMITS.nesting} deep; kbundle refuses it.`, ExitCode.BadConf);
  }
}

/**
 * The line where `${`/`$(` nesting first passes the limit, or 0. bash
 * expands such nesting in quadratic time and memory: 20,000 levels of
 * `${x:-` (120 kB) took 16 s and 3 GB before bash crashed. Quotes are not
 * tracked, so this over-counts at worst; real confs nest 3 or 4 deep.
 */
function tooDeep(text: string): number {
  let depth = 0;
  let line = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0a) line++;
    else if (c === 0x5c) {
      // backslash: the next character is literal
      if (text.charCodeAt(++i) === 0x0a) line++;
    }
    else if (c === 0x24 && (text[i + 1] === '{' || text[i + 1] === '(')) {
      i++;
      if (++depth > CONF_LIMITS.nesting) return line;
    } else if ((c === 0x7d || c === 0x29) && depth > 0) depth--;
  }
  return 0;
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** bash evaluates a subscript as a 64-bit signed integer, wrapping silently. */
function bashIndex(literal: string): bigint {
  return BigInt.asIntN(64, BigInt(literal));
}

/**
 * `file:line` of the assignment most likely to have produced the record,
 * or null. Best effort: a computed subscript or a value built by a loop
 * has no single line, and then the first line that assigns the name is
 * named.
 */
export function locate(files: string[], r: RejectedRecord): string | null {
  const n = esc(r.name);
  const literal = new RegExp(`(?:^|[^A-Za-z0-9_])${n}\\[\\s*([0-9]+)\\s*\\]`);
  const assigns = new RegExp(`(?:^|[^A-Za-z0-9_])${n}(?:\\[[^\\]]*\\])?\\+?=`);
  const texts = files.map((f) => {
    try {
      return readFileSync(f, 'latin1').split('\n');
    } catch {
      return [];
    }
  });
  const find = (test: (line: string) => boolean): string | null => {
    for (const [fi, lines] of texts.entries()) {
      const i = lines.findIndex(test);
      if (i >= 0) return `${files[fi]}:${i + 1}`;
    }
    return null;
  };
  if (/^[0-9]+$/.test(r.index)) {
    const wanted = BigInt(r.index);
    const exact = find((l) => {
      const m = literal.exec(l);
      return m !== null && bashIndex(m[1]!) === wanted;
    });
    if (exact) return exact;
  }
  if (r.kind === 'index') {
    const high = find((l) => {
      const m = literal.exec(l);
      return m !== null && BigInt(m[1]!) > BigInt(CONF_LIMITS.maxIndex);
    });
    if (high) return high;
  }
  return find((l) => assigns.test(l));
}

/** One line per rejected record, located where possible; at most 10, then a count. */
export function rejectionMessage(files: string[], rejected: RejectedRecord[]): string {
  const lines = rejected.slice(0, 10).map((r) => {
    const where = locate(files, r) ?? files[0] ?? 'dkms.conf';
    const what =
      r.kind === 'value'
        ? `value of ${r.bytes} bytes; kbundle accepts at most ${size(CONF_LIMITS.valueBytes)}`
        : /^[0-9]+$/.test(r.index)
          ? `array index above ${CONF_LIMITS.maxIndex}, the highest kbundle accepts`
          : 'array index is not a number (an associative array?)';
    const index = r.index.length > 40 ? `${r.index.slice(0, 40)}...` : r.index;
    return `${where}: ${r.name}[${index}]: ${what}.`;
  });
  if (rejected.length > 10) lines.push(`... and ${rejected.length - 10} more.`);
  return lines.join('\n');
}
