/**
 * Secret scrubbing. Every log line and every message sent to a queue passes through a Redactor,
 * so API keys and registry passwords never leave the process in clear text.
 *
 * Secrets come in two lifetimes:
 * - **agent-wide** ({@link Redactor.add}): the API key, secret-looking variables of the agent's
 *   environment. Kept for the redactor's life.
 * - **per job** ({@link Redactor.scope}): the secrets a job's spec carries. Kept while the job runs,
 *   dropped when its scope is released, so a long-lived agent does not collect every secret it ever saw.
 *
 * Why agent-wide output must hide the secrets of running jobs: a job's output and failures reach the
 * agent's own outputs (its `run:log`, `run:warning` and `agent:error` events, its logger, the binary's
 * stderr and log file), so while a job runs its secrets are redacted everywhere, not only in lines tagged
 * with the job. The agent releases a job's scope when it stops tracking the job, after its last event;
 * text about the job produced after that (a listener that buffers and writes later) no longer has them.
 *
 * The matcher (Aho–Corasick automata, rebuilt lazily after changes) holds the agent-wide secrets plus the
 * secrets of every live scope. A line costs a pass over its characters whatever the number of secrets,
 * and the matcher holds what is live now (within a bounded margin), not every secret ever seen.
 */
const KEY_PATTERNS: RegExp[] = [
  // W&B's own scrub (`WANDB_API_KEY=\w+(-\w+)?`), widened to any *_API_KEY / *_PASSWORD / *_TOKEN assignment.
  /\b([A-Z0-9_]*(?:API_KEY|PASSWORD|SECRET|TOKEN))=([^\s"']+)/g,
  // JSON-ish fields: "_wandb_api_key": "…", "password": "…"
  /("(?:_wandb_api_key|api_?key|apiKey|password|secret|token)"\s*:\s*")([^"]*)(")/gi,
  // Signed URLs: an Azure SAS, S3 and GCS presigned URLs, OAuth tokens in a query. The URL stays readable.
  /([?&](?:sig|signature|x-amz-signature|x-amz-security-token|x-goog-signature|access_token|token)=)([^&\s"'#]+)/gi,
];

export const REDACTED = '[REDACTED]';

/** Values shorter than this are not registered: too likely to hit ordinary text. */
const MIN_SECRET_LENGTH = 6;

/**
 * The secrets of one job: registered while it runs, dropped by {@link RedactorScope.release}.
 * Its `redact` uses the agent-wide matcher, which holds the agent's secrets and those of every live
 * scope (so a secret two jobs share is redacted in both, and one matcher serves every job).
 */
export interface RedactorScope {
  /** What the scope was opened for (the item id, for the agent's jobs). */
  readonly id: string;
  /** Registers a secret until {@link RedactorScope.release}. Shorter than 6 characters: ignored. */
  add(secret: string | undefined | null): void;
  /** Registers a raw spec's `_wandb_api_key` and secret-looking `env` values until release. */
  addSpecSecrets(spec: unknown): void;
  redact(text: string): string;
  redactValue<T>(value: T): T;
  /**
   * Drops this scope's secrets from the matcher (a secret also held by the agent or another live scope
   * stays). Idempotent; `add` after release registers nothing.
   */
  release(): void;
}

/**
 * Scrubs secrets from text and values: registered secrets wherever they appear, `*_API_KEY=…`-style
 * assignments and secret-looking JSON fields.
 *
 * @example
 * ```ts
 * const redactor = new Redactor();
 * redactor.add(process.env.WANDB_API_KEY);      // agent-wide
 * const job = redactor.scope(item.id);          // per job
 * job.addSpecSecrets(item.spec);
 * log(redactor.redact(line));                   // agent-wide output still hides the running job's secrets
 * job.release();                                // the job ended: its secrets leave the matcher
 * ```
 */
export class Redactor {
  /** How many holders (the agent itself counts once, each scope once) each secret has: the secrets matched now. */
  private readonly holders = new Map<string, number>();
  private readonly own = new Set<string>();
  /**
   * Two automata, so a job starting or ending does not rebuild one over every live secret: `main` over a
   * snapshot of the set, `recent` over secrets added since (small). A secret dropped from the set stays in
   * `main` (skipped when matched) until enough have gone that `main` is rebuilt; so is one added beyond
   * `RECENT_MAX`. Each rebuild is paid for by as many changes as the automaton had secrets (or 32), so a
   * change costs about the same whatever the number of live secrets, and neither automaton keeps more than
   * about twice the live set.
   */
  private main: Automaton | undefined;
  private mainSecrets = new Set<string>();
  /** Secrets of `main` no longer in the set. */
  private stale = 0;
  private recent: Automaton | undefined;
  private readonly recentSecrets = new Set<string>();
  private recentDirty = false;

  /** Registers a value to scrub wherever it appears, for the redactor's life. Values shorter than 6 characters are ignored (too likely to hit ordinary text). */
  add(secret: string | undefined | null): void {
    if (!isSecretValue(secret) || this.own.has(secret)) return;
    this.own.add(secret);
    this.hold(secret);
  }

  /**
   * Registers, for the redactor's life, the secrets a raw launch spec carries: its `_wandb_api_key` and the
   * values of secret-looking `env` entries. Takes the raw (possibly malformed) spec, so it can run before
   * validation. A job's secrets belong in its {@link Redactor.scope} instead, so they leave when it ends.
   */
  addSpecSecrets(spec: unknown): void {
    for (const s of specSecrets(spec)) this.add(s);
  }

  /**
   * Opens a scope for one job's secrets: they are redacted (here and in every output of this redactor)
   * until the scope is released. Scopes are independent: two scopes with the same id are two holders.
   */
  scope(id: string): RedactorScope {
    const mine = new Set<string>();
    let released = false;
    const add = (secret: string | undefined | null) => {
      if (released || !isSecretValue(secret) || mine.has(secret)) return;
      mine.add(secret);
      this.hold(secret);
    };
    return {
      id,
      add,
      addSpecSecrets: (spec) => {
        for (const s of specSecrets(spec)) add(s);
      },
      redact: (text) => this.redact(text),
      redactValue: (value) => this.redactValue(value),
      release: () => {
        if (released) return;
        released = true;
        for (const s of mine) this.drop(s);
        mine.clear();
      },
    };
  }

  /** Distinct secrets matched now: the agent-wide ones plus those of live scopes. */
  get size(): number {
    return this.holders.size;
  }

  /** Secrets the matcher holds, live or awaiting removal: stays within about twice `size` (plus a few dozen). */
  get matcherSize(): number {
    return this.mainSecrets.size + this.recentSecrets.size;
  }

  /** Whether `secret` is matched now. */
  has(secret: string): boolean {
    return this.holders.has(secret);
  }

  redact(text: string): string {
    let out = text;
    if (this.holders.size > 0) {
      this.refresh();
      let spans = this.main?.scan(out, this.holders, undefined);
      spans = this.recent?.scan(out, this.holders, spans) ?? spans;
      if (spans) out = replaceSpans(out, spans, REDACTED);
    }
    out = out.replace(KEY_PATTERNS[0]!, (_m, name: string) => `${name}=${REDACTED}`);
    out = out.replace(KEY_PATTERNS[1]!, (_m, pre: string, _v: string, post: string) => `${pre}${REDACTED}${post}`);
    out = out.replace(KEY_PATTERNS[2]!, (_m, pre: string) => `${pre}${REDACTED}`);
    return out;
  }

  /** Deep-copies a value with secret-looking fields and registered secrets scrubbed. */
  redactValue<T>(value: T): T {
    return scrub(value, this, 0) as T;
  }

  private hold(secret: string): void {
    const n = this.holders.get(secret) ?? 0;
    this.holders.set(secret, n + 1);
    if (n > 0) return;
    if (this.mainSecrets.has(secret))
      this.stale--; // back in the set: `main` still has it
    else {
      this.recentSecrets.add(secret);
      this.recentDirty = true;
    }
  }

  private drop(secret: string): void {
    const n = this.holders.get(secret) ?? 0;
    if (n > 1) {
      this.holders.set(secret, n - 1);
      return;
    }
    this.holders.delete(secret);
    if (this.recentSecrets.delete(secret)) this.recentDirty = true;
    else if (this.mainSecrets.has(secret)) this.stale++;
  }

  /** Rebuilds what the changes since the last line require (see `main`). */
  private refresh(): void {
    if (this.recentSecrets.size > RECENT_MAX || this.stale > Math.max(STALE_MIN, this.mainSecrets.size / 2)) {
      this.mainSecrets = new Set(this.holders.keys());
      this.main = buildAutomaton(this.mainSecrets);
      this.stale = 0;
      this.recentSecrets.clear();
      this.recent = undefined;
      this.recentDirty = false;
    } else if (this.recentDirty) {
      this.recent = this.recentSecrets.size > 0 ? buildAutomaton(this.recentSecrets) : undefined;
      this.recentDirty = false;
    }
  }
}

/** Secrets added since `main` was built, matched by a second automaton, before `main` is rebuilt with them. */
const RECENT_MAX = 32;
/** Stale secrets `main` may keep before a rebuild, at the least. */
const STALE_MIN = 64;

function isSecretValue(secret: unknown): secret is string {
  return typeof secret === 'string' && secret.length >= MIN_SECRET_LENGTH;
}

function specSecrets(spec: unknown): string[] {
  if (!spec || typeof spec !== 'object') return [];
  const s = spec as { _wandb_api_key?: unknown; env?: unknown };
  const out: string[] = [];
  if (typeof s._wandb_api_key === 'string') out.push(s._wandb_api_key);
  if (s.env && typeof s.env === 'object') {
    for (const [name, value] of Object.entries(s.env)) if (isSecretEnvName(name) && typeof value === 'string') out.push(value);
  }
  return out;
}

/** A compiled set of literal strings that finds their occurrences in one pass over a text. */
interface Automaton {
  /**
   * Appends `[start, end)` of the longest occurrence ending at each position whose secret is in `live`
   * (a shorter one ending there lies inside it, so the union covers every live occurrence).
   */
  scan(text: string, live: ReadonlyMap<string, unknown>, spans: number[] | undefined): number[] | undefined;
}

/**
 * Aho–Corasick over UTF-16 code units. `dict[state]` is the deepest state on `state`'s failure chain
 * (itself included) that ends a secret, 0 if none; following `dict[fail[d]]` visits the shorter ones.
 */
function buildAutomaton(secrets: Iterable<string>): Automaton {
  const next: Map<number, number>[] = [new Map()];
  const depth: number[] = [0];
  const word: (string | undefined)[] = [undefined];
  for (const secret of secrets) {
    let state = 0;
    for (let i = 0; i < secret.length; i++) {
      const c = secret.charCodeAt(i);
      let to = next[state]!.get(c);
      if (to === undefined) {
        to = next.length;
        next.push(new Map());
        depth.push(depth[state]! + 1);
        word.push(undefined);
        next[state]!.set(c, to);
      }
      state = to;
    }
    word[state] = secret;
  }
  const fail = new Int32Array(next.length);
  const dict = new Int32Array(next.length);
  // Breadth first, so a state's failure target is final before its children need it.
  const order: number[] = [...next[0]!.values()];
  for (let head = 0; head < order.length; head++) {
    const state = order[head]!;
    dict[state] = word[state] !== undefined ? state : dict[fail[state]!]!;
    for (const [c, child] of next[state]!) {
      let f = fail[state]!;
      while (f !== 0 && !next[f]!.has(c)) f = fail[f]!;
      const target = next[f]!.get(c);
      fail[child] = target !== undefined && target !== child ? target : 0;
      order.push(child);
    }
  }
  return {
    scan(text, live, spans) {
      const root = next[0]!;
      let state = 0;
      for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (state === 0) {
          // Most characters of most lines start no secret: one lookup, no failure walk.
          const to = root.get(c);
          if (to === undefined) continue;
          state = to;
        } else {
          let to = next[state]!.get(c);
          while (to === undefined && state !== 0) {
            state = fail[state]!;
            to = next[state]!.get(c);
          }
          state = to ?? 0;
        }
        for (let d = dict[state]!; d !== 0; d = dict[fail[d]!]!) {
          if (live.has(word[d]!)) {
            (spans ??= []).push(i + 1 - depth[d]!, i + 1);
            break;
          }
        }
      }
      return spans;
    },
  };
}

/** Replaces each maximal run of overlapping spans (flat `[start, end, …]` pairs) with `by`. */
function replaceSpans(text: string, flat: number[], by: string): string {
  const spans: [number, number][] = [];
  for (let i = 0; i < flat.length; i += 2) spans.push([flat[i]!, flat[i + 1]!]);
  spans.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
  let out = '';
  let copied = 0;
  let [start, end] = spans[0]!;
  for (let i = 1; i < spans.length; i++) {
    const [s, e] = spans[i]!;
    if (s < end) {
      if (e > end) end = e;
      continue;
    }
    out += text.slice(copied, start) + by;
    copied = end;
    [start, end] = [s, e];
  }
  return out + text.slice(copied, start) + by + text.slice(end);
}

const SECRET_KEY = /^(?:_wandb_api_key|wandb_api_key|api_?key|apikey|password|secret|token|authorization)$/i;

function scrub(value: unknown, r: Redactor, depth: number): unknown {
  if (depth > 32) return '[depth]';
  if (typeof value === 'string') return r.redact(value);
  if (Array.isArray(value)) return value.map((v) => scrub(v, r, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = SECRET_KEY.test(k) && v != null ? REDACTED : scrub(v, r, depth + 1);
    }
    return out;
  }
  return value;
}

/** Names of environment variables whose values are secrets. */
export function isSecretEnvName(name: string): boolean {
  return /KEY|PASSWORD|SECRET|TOKEN|CREDENTIALS/i.test(name);
}
