import type { ValidationIssue } from '../errors.js';
import { formatPath } from '../validation.js';

/**
 * Unfilled placeholders from docs and templates: `<W_B_ENTITY>`, `<YOUR QUEUE NAME>`,
 * `<account-id>.dkr.ecr…`, `${VAR}` (shell or envsubst) and `{{ var }}` (Helm, Jinja). A real value
 * of any config key never holds these, so each is refused by name instead of failing later as a
 * wrong entity, queue or URI. `builder.kaniko-config` is a Kubernetes object and is not scanned.
 */
const PATTERNS: ReadonlyArray<{ re: RegExp; kind: string }> = [
  { re: /\{\{[^{}]*\}\}/, kind: 'template placeholder' },
  { re: /\$\{[^{}]*\}/, kind: 'variable placeholder' },
  { re: /<[^<>\s][^<>]*>/, kind: 'placeholder' },
];

/** What a user should write instead, for the keys docs put placeholders in. */
const WHAT: Record<string, string> = {
  entity: 'your W&B entity (team or user name)',
  queues: 'the name of a queue',
  queue: 'the name of a queue',
  project: 'nothing: the agent ignores project',
  base_url: 'your W&B server URL',
  api_key: 'your W&B API key (better: the WANDB_API_KEY variable)',
  'builder.type': 'docker, kaniko or noop',
  'builder.destination': 'your image repository, such as 123456789012.dkr.ecr.us-east-1.amazonaws.com/launch',
  'builder.build-context-store': 'your bucket, such as s3://my-bucket/contexts',
  'environment.region': 'your cloud region, such as us-east-1',
  'environment.type': 'aws, gcp or azure',
  'registry.uri': 'your image repository',
};

/** The first placeholder in a string, if any. */
export function findPlaceholder(value: string): { text: string; kind: string } | undefined {
  for (const { re, kind } of PATTERNS) {
    const m = re.exec(value);
    if (m) return { text: m[0], kind };
  }
  return undefined;
}

/** One issue per string value that still holds a placeholder, with what to put there. */
export function placeholderIssues(raw: Record<string, unknown>): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  const visit = (value: unknown, path: Array<string | number>) => {
    if (path[0] === 'builder' && path[1] === 'kaniko-config') return;
    if (typeof value === 'string') {
      const hit = findPlaceholder(value);
      if (!hit) return;
      const at = formatPath(path);
      const key = path.filter((p) => typeof p === 'string').join('.');
      const what = WHAT[key] ?? 'the real value';
      const whole = hit.text === value.trim();
      const found = path[0] === 'api_key' ? 'a placeholder (secret, not shown)' : JSON.stringify(value);
      out.push({
        path: at,
        expected: what,
        found,
        message: whole
          ? `${at} is still the ${hit.kind} ${path[0] === 'api_key' ? '' : `${hit.text}`}`.trimEnd() + `: put ${what} here`
          : `${at} still holds the ${hit.kind} ${path[0] === 'api_key' ? '' : `${hit.text} in ${found}`}`.trimEnd() + `: put ${what} here`,
      });
      return;
    }
    if (Array.isArray(value)) value.forEach((v, i) => visit(v, [...path, i]));
    else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) visit(v, [...path, k]);
  };
  for (const [k, v] of Object.entries(raw)) visit(v, [k]);
  return out;
}
