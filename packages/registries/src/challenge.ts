/** One authentication challenge from a `WWW-Authenticate` header (RFC 7235). */
export interface AuthChallenge {
  /** Lower-cased scheme: `basic`, `bearer`, … */
  scheme: string;
  /** Parameters with lower-cased names; quoted values unescaped. */
  params: Record<string, string>;
  /** A token68 value instead of parameters (`Negotiate abc==`), when present. */
  token68?: string;
}

const TOKEN = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;
const TOKEN68 = /^[A-Za-z0-9._~+/-]+=*/;

/**
 * Parses a `WWW-Authenticate` header value into its challenges, e.g.
 * `Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"`.
 * Several challenges may share one header (`Basic realm="x", Bearer realm="y"`). Throws an Error
 * saying where the header stops making sense.
 */
export function parseWwwAuthenticate(header: string): AuthChallenge[] {
  const out: AuthChallenge[] = [];
  let i = 0;
  const n = header.length;
  const skipSpace = () => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const readToken = () => {
    const start = i;
    while (i < n && TOKEN.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  const fail = (what: string): never => {
    throw new Error(`cannot parse WWW-Authenticate at character ${i + 1}: ${what}`);
  };
  const readQuoted = () => {
    i++; // opening quote
    let value = '';
    while (i < n && header[i] !== '"') {
      if (header[i] === '\\' && i + 1 < n) i++;
      value += header[i];
      i++;
    }
    if (i >= n) fail('unterminated quoted string');
    i++; // closing quote
    return value;
  };

  for (;;) {
    while (i < n && (header[i] === ',' || header[i] === ' ' || header[i] === '\t')) i++;
    if (i >= n) break;
    const scheme = readToken();
    if (!scheme) fail(`expected an auth scheme, found ${JSON.stringify(header[i])}`);
    const challenge: AuthChallenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    skipSpace();
    // token68 form: a single value with no "=" pair after the scheme.
    const t68 = TOKEN68.exec(header.slice(i));
    if (t68 && !/^[A-Za-z0-9._~+/-]+\s*=\s*[^=\s,]/.test(header.slice(i)) && /^\s*(,|$)/.test(header.slice(i + t68[0].length))) {
      challenge.token68 = t68[0];
      i += t68[0].length;
      continue;
    }
    // auth-params until the next challenge starts (a token followed by a space and not "=").
    for (;;) {
      skipSpace();
      if (i >= n) break;
      const start = i;
      const name = readToken();
      if (!name) {
        if (header[i] === ',') {
          i++;
          continue;
        }
        fail(`expected a parameter name, found ${JSON.stringify(header[i])}`);
      }
      skipSpace();
      if (header[i] !== '=') {
        // Not a parameter: the start of the next challenge.
        i = start;
        break;
      }
      i++;
      skipSpace();
      const value = header[i] === '"' ? readQuoted() : readToken();
      challenge.params[name.toLowerCase()] = value;
      skipSpace();
      if (i < n && header[i] !== ',') fail(`expected "," after parameter ${name}, found ${JSON.stringify(header[i])}`);
    }
  }
  return out;
}
