import { LaunchError, LaunchValidationError, type ValidationIssue } from '../errors.js';
import { Redactor } from '../redact.js';
import { describeValue } from '../validation.js';
import { helmValuesIssue, isHelmValues } from './helm-values.js';
import { configIssues } from './issues.js';
import { legacyKeyMessage } from './legacy-keys.js';
import { placeholderIssues } from './placeholders.js';
import { agentConfigSchema, type AgentConfig } from './schema.js';

/** Objects in which an empty YAML value (`key:` → null) means "unset", as it does for W&B's optional fields. */
const NULLABLE_OBJECTS = ['builder', 'registry', 'environment'];

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function withoutNulls(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null));
}

/**
 * Drops null values at the top level and inside builder/registry/environment, so `entity:` with no
 * value means unset. `kaniko-config` is left untouched: it is a Kubernetes object where null matters.
 */
export function stripNulls(raw: Record<string, unknown>): Record<string, unknown> {
  const out = withoutNulls(raw);
  for (const key of NULLABLE_OBJECTS) {
    const inner = out[key];
    if (isPlainObject(inner)) out[key] = withoutNulls(inner);
  }
  return out;
}

/** The hint every config error carries. */
export const CONFIG_HINT = 'fix the listed keys; docs/config.md describes every key';

/**
 * Builds the one error for a bad config. Any secret found in the input is scrubbed from the
 * messages even where it shows up under another key (a key pasted into `entity`, say).
 */
export function configValidationError(subject: string, issues: ValidationIssue[], secrets: unknown[] = []): LaunchValidationError {
  const redactor = new Redactor();
  for (const s of secrets) if (typeof s === 'string') redactor.add(s);
  const clean = issues.map((i) => ({
    path: i.path,
    expected: redactor.redact(i.expected),
    found: redactor.redact(i.found),
    message: redactor.redact(i.message),
  }));
  return new LaunchValidationError({ code: 'config.invalid', stage: 'agent', subject, issues: clean, hint: CONFIG_HINT });
}

/** Issue for a document that is not a mapping of keys (a list, a scalar). */
export function notAMappingIssue(raw: unknown): ValidationIssue {
  const found = typeof raw === 'string' ? `the text ${describeValue(raw)}` : describeValue(raw);
  return { path: '', expected: 'a mapping of config keys', found, message: `expected a mapping of config keys, found ${found}` };
}

/**
 * Validates the keys of one raw layer (file, environment or flags) and returns its issues; `rename`
 * maps a config key to the name the user wrote (a variable or a flag).
 */
export function layerIssues(raw: Record<string, unknown>, rename?: (key: string) => string): ValidationIssue[] {
  // A placeholder is reported as one, not as the wrong URI or name it makes the value.
  const placeholders = placeholderIssues(raw);
  const covered = (path: string) => placeholders.some((p) => path === p.path || path.startsWith(`${p.path}.`) || path.startsWith(`${p.path}[`));
  const result = agentConfigSchema.safeParse(raw);
  const schemaIssues = result.success ? [] : configIssues(result.error, raw, agentConfigSchema, { unknownKey: legacyKeyMessage });
  const issues = [...placeholders, ...schemaIssues.filter((i) => !covered(i.path))];
  if (!rename) return issues;
  return issues.map((i) => {
    const key = i.path.split(/[.[]/)[0] ?? i.path;
    const name = rename(key);
    return { ...i, path: name, message: `${i.message} (sets ${i.path})` };
  });
}

/** Applies the config's own folding: `queue` is appended to `queues` (no duplicates) and `project` dropped. */
export function foldConfig(parsed: ReturnType<typeof agentConfigSchema.parse>): AgentConfig {
  const { queue, project: _ignored, ...rest } = parsed;
  const queues = [...rest.queues];
  if (queue !== undefined) queues.push(queue);
  const out: AgentConfig = { ...rest, queues: [...new Set(queues)] };
  // Other environment keys are accepted with a warning (W&B's rule) and not carried on.
  if (rest.environment) {
    const { type, region } = rest.environment;
    out.environment = { type, ...(region !== undefined ? { region } : {}) };
  }
  return out;
}

/**
 * Validates a raw config object (e.g. a parsed `launch-config.yaml`) and applies defaults.
 * `undefined`/`null` (an empty file) is `{}`. Throws a LaunchValidationError (code `config.invalid`,
 * stage `agent`) listing every bad field; `subject` names the input, usually the file path.
 */
export function parseAgentConfig(raw: unknown, subject: string, options: CrossCheckOptions = {}): AgentConfig {
  if (raw === undefined || raw === null) raw = {};
  if (!isPlainObject(raw)) throw configValidationError(subject, [notAMappingIssue(raw)]);
  if (isHelmValues(raw)) throw configValidationError(subject, [helmValuesIssue(raw)], [raw['api_key']]);
  const input = stripNulls(raw);
  const issues = layerIssues(input);
  const result = agentConfigSchema.safeParse(input);
  if (issues.length > 0 || !result.success) throw configValidationError(subject, issues, [input['api_key']]);
  const config = foldConfig(result.data);
  const cross = crossIssues(config, options);
  if (cross.length > 0) throw configValidationError(subject, cross, [input['api_key']]);
  return config;
}

export interface CrossCheckOptions {
  /** Environment the agent runs with (default `process.env`): `WANDB_LAUNCH_KANIKO_PVC_NAME` stands in for a context store. */
  env?: Record<string, string | undefined>;
}

/**
 * W&B's rules that span layers or need the environment, checked on the merged config: kaniko needs
 * `builder.build-context-store` unless a PVC carries the contexts (`kaniko_builder.py: from_config`).
 */
export function crossIssues(config: AgentConfig, options: CrossCheckOptions = {}): ValidationIssue[] {
  const env = options.env ?? process.env;
  const out: ValidationIssue[] = [];
  const builder = config.builder;
  if (builder?.type === 'kaniko' && builder['build-context-store'] === undefined && !env['WANDB_LAUNCH_KANIKO_PVC_NAME']) {
    const expected = 'a build context store (s3://…, gs://… or an Azure blob URL) for the kaniko builder, or a PVC named by WANDB_LAUNCH_KANIKO_PVC_NAME';
    out.push({ path: 'builder.build-context-store', expected, found: 'nothing', message: `expected ${expected}, found nothing` });
  }
  return out;
}

/**
 * W&B's `_max_from_config`: -1 means no limit (Infinity), other negatives and non-integers are refused.
 * `undefined` gives `fallback` (1, W&B's default).
 */
export function maxFromConfig(n: number | undefined, fallback = 1): number {
  if (n === undefined) return fallback;
  if (n === -1) return Infinity;
  if (!Number.isInteger(n) || n < 0) {
    throw new LaunchError({
      code: 'config.invalid',
      stage: 'agent',
      message: `expected -1 (no limit) or an integer >= 0, found ${describeValue(n)}`,
      hint: CONFIG_HINT,
    });
  }
  return n;
}
