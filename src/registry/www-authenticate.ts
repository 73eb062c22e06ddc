/**
 * The `WWW-Authenticate` challenge a registry answers 401 with (RFC 7235
 * §4.1; the token flow of distribution's docs/spec/auth/token.md):
 * `Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"`
 * or `Basic realm="..."`. Pure parsing, no I/O.
 */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Every challenge in the header value (a server may offer more than one). */
export function parseChallenges(header: string | string[] | undefined): Challenge[] {
  const values = Array.isArray(header) ? header : header ? [header] : [];
  const out: Challenge[] = [];
  for (const value of values) {
    let i = 0;
    let current: Challenge | null = null;
    const s = value;
    const skip = () => {
      while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++;
    };
    while (i < s.length) {
      skip();
      const m = /^([A-Za-z0-9!#$%&'*+.^_`|~-]+)/.exec(s.slice(i));
      if (!m) break;
      const word = m[1]!;
      i += word.length;
      while (s[i] === ' ') i++;
      if (s[i] === '=') {
        // auth-param of the current challenge
        i++;
        while (s[i] === ' ') i++;
        let val = '';
        if (s[i] === '"') {
          i++;
          while (i < s.length && s[i] !== '"') {
            if (s[i] === '\\' && i + 1 < s.length) i++;
            val += s[i++];
          }
          i++;
        } else {
          const v = /^[^,\s]*/.exec(s.slice(i))![0];
          val = v;
          i += v.length;
        }
        if (current) current.params[word.toLowerCase()] = val;
      } else {
        current = { scheme: word.toLowerCase(), params: {} };
        out.push(current);
      }
    }
  }
  return out;
}
