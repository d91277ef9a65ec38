/**
 * Secret scrubbing. Every log line and every message sent to a queue passes through a Redactor,
 * so API keys and registry passwords never leave the process in clear text.
 */
const KEY_PATTERNS: RegExp[] = [
  // W&B's own scrub (`WANDB_API_KEY=\w+(-\w+)?`), widened to any *_API_KEY / *_PASSWORD / *_TOKEN assignment.
  /\b([A-Z0-9_]*(?:API_KEY|PASSWORD|SECRET|TOKEN))=([^\s"']+)/g,
  // JSON-ish fields: "_wandb_api_key": "…", "password": "…"
  /("(?:_wandb_api_key|api_?key|apiKey|password|secret|token)"\s*:\s*")([^"]*)(")/gi,
];

export const REDACTED = '[REDACTED]';

export class Redactor {
  private readonly secrets = new Set<string>();

  /** Registers a value to scrub wherever it appears. Values shorter than 6 characters are ignored (too likely to hit ordinary text). */
  add(secret: string | undefined | null): void {
    if (typeof secret === 'string' && secret.length >= 6) this.secrets.add(secret);
  }

  /**
   * Registers the secrets a raw launch spec carries: its `_wandb_api_key` and the values of secret-looking
   * `env` entries. Takes the raw (possibly malformed) spec, so it can run before validation.
   */
  addSpecSecrets(spec: unknown): void {
    if (!spec || typeof spec !== 'object') return;
    const s = spec as { _wandb_api_key?: unknown; env?: unknown };
    if (typeof s._wandb_api_key === 'string') this.add(s._wandb_api_key);
    if (s.env && typeof s.env === 'object') {
      for (const [name, value] of Object.entries(s.env)) if (isSecretEnvName(name) && typeof value === 'string') this.add(value);
    }
  }

  redact(text: string): string {
    let out = text;
    for (const s of this.secrets) if (out.includes(s)) out = out.split(s).join(REDACTED);
    out = out.replace(KEY_PATTERNS[0]!, (_m, name: string) => `${name}=${REDACTED}`);
    out = out.replace(KEY_PATTERNS[1]!, (_m, pre: string, _v: string, post: string) => `${pre}${REDACTED}${post}`);
    return out;
  }

  /** Deep-copies a value with secret-looking fields and registered secrets scrubbed. */
  redactValue<T>(value: T): T {
    return scrub(value, this, 0) as T;
  }
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
