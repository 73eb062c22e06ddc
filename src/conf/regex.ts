/**
 * Answers "does bash's `[[ subject =~ regex ]]` match?". read-raw asks bash
 * itself; the emulation is only the fallback for callers that evaluate a
 * RawConf built by hand, and covers the dialect DKMS confs use in practice.
 */
import { regexKey, type RegexResults, type RegexVerdict } from './records.js';

export type RegexOracle = (regex: string, subject: string) => RegexVerdict;

const POSIX_CLASSES: Record<string, string> = {
  alpha: 'A-Za-z', digit: '0-9', alnum: 'A-Za-z0-9', upper: 'A-Z', lower: 'a-z',
  space: ' \\t\\n\\r\\f\\v', blank: ' \\t', punct: '!-\\/:-@\\[-`{-~', xdigit: '0-9A-Fa-f',
  word: 'A-Za-z0-9_', cntrl: '\\x00-\\x1f\\x7f', print: '\\x20-\\x7e', graph: '\\x21-\\x7e',
};

/** POSIX ERE -> JS RegExp source: bracket classes, and no JS-only escapes. */
export function ereToJs(ere: string): string {
  let out = '';
  for (let i = 0; i < ere.length; i++) {
    const c = ere[i]!;
    if (c === '\\') {
      const n = ere[i + 1];
      if (n === undefined) throw new SyntaxError('trailing backslash');
      // In ERE a backslash makes the next character literal (\d is "d").
      out += /[A-Za-z0-9]/.test(n) ? n : `\\${n}`;
      i++;
    } else if (c === '[') {
      let j = i + 1;
      let body = '';
      if (ere[j] === '^') (body += '^'), j++;
      if (ere[j] === ']') (body += '\\]'), j++;
      for (; j < ere.length && ere[j] !== ']'; j++) {
        const cls = /^\[:([a-z]+):\]/.exec(ere.slice(j));
        if (cls) {
          const js = POSIX_CLASSES[cls[1]!];
          if (js === undefined) throw new SyntaxError(`unknown class ${cls[1]}`);
          body += js;
          j += cls[0].length - 1;
        } else if (ere[j] === '\\' || ere[j] === '[') {
          body += `\\${ere[j]}`;
        } else {
          body += ere[j];
        }
      }
      if (j >= ere.length) throw new SyntaxError('unterminated bracket');
      out += `[${body}]`;
      i = j;
    } else {
      out += c;
    }
  }
  return out;
}

export function emulatedRegex(regex: string, subject: string): RegexVerdict {
  try {
    return new RegExp(ereToJs(regex)).test(subject) ? 'match' : 'nomatch';
  } catch {
    return 'invalid';
  }
}

/** bash's verdicts where known, the emulation otherwise. */
export function oracleFrom(results?: RegexResults): RegexOracle {
  return (regex, subject) => results?.get(regexKey(regex, subject)) ?? emulatedRegex(regex, subject);
}
