/** One `machine` entry of a netrc file. */
export interface NetrcEntry {
  machine: string | null;
  login?: string;
  password?: string;
  account?: string;
}

function tokenize(text: string): string[] {
  const tokens: string[] = [];
  const lines = text.split(/\r?\n/);
  let inMacro = false;
  for (const line of lines) {
    if (inMacro) {
      // A macro definition runs until an empty line.
      if (line.trim() === '') inMacro = false;
      continue;
    }
    const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
    let m: RegExpExecArray | null;
    while ((m = re.exec(line))) {
      const tok = m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!;
      if (m[1] === undefined && tok.startsWith('#')) break;
      tokens.push(tok);
      if (tok === 'macdef') {
        inMacro = true;
        break;
      }
    }
  }
  return tokens;
}

/** Parses a netrc file (the format `wandb login` writes). Unknown tokens are skipped. */
export function parseNetrc(text: string): NetrcEntry[] {
  const tokens = tokenize(text);
  const entries: NetrcEntry[] = [];
  let current: NetrcEntry | undefined;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t === 'machine') {
      current = { machine: tokens[++i] ?? '' };
      entries.push(current);
    } else if (t === 'default') {
      current = { machine: null };
      entries.push(current);
    } else if (current && (t === 'login' || t === 'password' || t === 'account')) {
      const v = tokens[++i];
      if (v !== undefined) current[t] = v;
    }
  }
  return entries;
}

/** The entry for `host` (with or without a port), falling back to `default`. */
export function netrcEntryFor(entries: NetrcEntry[], host: string, port?: string): NetrcEntry | undefined {
  const withPort = port ? `${host}:${port}` : undefined;
  return (
    entries.find((e) => e.machine === host) ?? (withPort ? entries.find((e) => e.machine === withPort) : undefined) ?? entries.find((e) => e.machine === null)
  );
}
