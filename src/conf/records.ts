/** Decoding of the NUL-separated records SAFE_SOURCE_PROGRAM writes. */
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
}

export function parseRecords(buf: Buffer): SourceRecords {
  const fields = buf.toString('utf8').split('\0');
  // A complete stream ends with a NUL, leaving one empty trailing field.
  if (fields.at(-1) === '') fields.pop();
  const raw: RawConf = new Map();
  const regex: RegexResults = new Map();
  for (let i = 0; i < fields.length; i += 4) {
    const [tag, a, b, c] = [fields[i], fields[i + 1] ?? '', fields[i + 2] ?? '', fields[i + 3] ?? ''];
    if (tag === 'V') {
      let arr = raw.get(a);
      if (!arr) raw.set(a, (arr = new Map()));
      arr.set(Number(b), c);
    } else if (tag === 'R') {
      regex.set(regexKey(a, b), c === '0' ? 'match' : c === '1' ? 'nomatch' : 'invalid');
    } else {
      throw new Error(`malformed record stream from bash at field ${i}: ${JSON.stringify(tag)}`);
    }
  }
  return { raw, regex };
}
