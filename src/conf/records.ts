/** Decoding of the NUL-separated records SAFE_SOURCE_PROGRAM writes. */
import { CONF_LIMITS, type RejectedRecord } from './limits.js';
import type { RawConf } from './types.js';

/** `[[ subject =~ regex ]]` as bash answered it. */
export type RegexVerdict = 'match' | 'nomatch' | 'invalid';

/** Verdicts keyed by regex and subject. */
export type RegexResults = Map<string, RegexVerdict>;

export function regexKey(regex: string, subject: string): string {
  return `${regex}\0${subject}`;
}

export interface SourceRecords {
  raw: RawConf;
  regex: RegexResults;
  /** Values over CONF_LIMITS, left out of raw so nothing downstream sizes itself by them. */
  rejected: RejectedRecord[];
}

const INDEX_RE = /^[0-9]{1,10}$/;

export function parseRecords(buf: Buffer): SourceRecords {
  const fields = buf.toString('utf8').split('\0');
  // A complete stream ends with a NUL, leaving one empty trailing field.
  if (fields.at(-1) === '') fields.pop();
  const raw: RawConf = new Map();
  const regex: RegexResults = new Map();
  const rejected: RejectedRecord[] = [];
  for (let i = 0; i < fields.length; i += 4) {
    const [tag, a, b, c] = [fields[i], fields[i + 1] ?? '', fields[i + 2] ?? '', fields[i + 3] ?? ''];
    if (tag === 'V') {
      // An associative array, or a subscript bash wrapped from a huge number, is no module index.
      if (!INDEX_RE.test(b) || Number(b) > CONF_LIMITS.maxIndex) {
        rejected.push({ name: a, index: b, kind: 'index', bytes: Buffer.byteLength(c) });
        continue;
      }
      if (Buffer.byteLength(c) > CONF_LIMITS.valueBytes) {
        rejected.push({ name: a, index: b, kind: 'value', bytes: Buffer.byteLength(c) });
        continue;
      }
      let arr = raw.get(a);
      if (!arr) raw.set(a, (arr = new Map()));
      arr.set(Number(b), c);
    } else if (tag === 'R') {
      regex.set(regexKey(a, b), c === '0' ? 'match' : c === '1' ? 'nomatch' : 'invalid');
    } else {
      throw new Error(`malformed record stream from bash at field ${i}: ${JSON.stringify(tag)}`);
    }
  }
  return { raw, regex, rejected };
}
