import { z } from 'zod';
import { configIssues } from '../config/issues.js';
import { LaunchValidationError, type ValidationIssue } from '../errors.js';
import { WANDB_RESOURCES } from '../spec.js';
import { closest, describeValue } from '../validation.js';
import {
  declarationIssues,
  findPlaceholders,
  renderTemplate,
  resolveTemplateValues,
  schemaKeyHint,
  templateVariableSchema,
  unfilledPlaceholderIssues,
  type TemplateValue,
} from './template-vars.js';

/**
 * A W&B queue config: the part of every launch spec a queue fills in. W&B stores it as the queue's
 * "default resource config" (`{resource_args: {<resource>: <config>}}` plus the queue's resource type)
 * with template variable declarations beside it, and its server merges it into each item at push time.
 * Here it is one document:
 *
 * ```yaml
 * resource: kubernetes
 * resource_args:
 *   kubernetes:                       # keyed by the resource, as in a launch spec
 *     spec:
 *       backoffLimit: "{{retries}}"   # a whole-string placeholder takes the value's type
 *       template: {spec: {containers: [{resources: {limits: {cpu: "{{cpu}}"}}}]}}
 * template_variables:                 # W&B's declarations
 *   cpu: {schema: {type: integer, minimum: 1, maximum: 8, default: 2}}
 *   retries: {schema: {type: integer, enum: [0, 1, 3]}, description: how often a failed pod is retried}
 * ```
 */

const RESOURCE_NAME = /^[a-z][a-z0-9-]{0,62}$/;
const mapping = (what: string) => z.record(z.string(), z.unknown(), { error: what });

export const queueConfigSchema = z.strictObject(
  {
    resource: z.string({ error: 'a resource name such as "kubernetes", "local-container" or "local-process"' }),
    resource_args: z
      .record(z.string(), mapping("a mapping (the resource's arguments)"), { error: 'a mapping of the resource name to its arguments' })
      .optional(),
    template_variables: z.record(z.string(), templateVariableSchema, { error: 'a mapping of variable names to declarations' }).optional(),
    description: z.string({ error: 'a string' }).max(10_000, { error: 'a string of at most 10,000 characters' }).optional(),
  },
  { error: 'a mapping with resource, resource_args, template_variables (and optionally description)' },
);

/** A checked queue config. */
export type QueueConfig = z.infer<typeof queueConfigSchema>;

/** Keys of a Kubernetes manifest: seen directly under resource_args, they lack the resource level. */
const MANIFEST_KEYS = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'containers', 'template', 'RoleArn', 'ResourceConfig']);

/** `local` is W&B's old name of `local-container`: the two name one runner. */
function sameResource(a: string, b: string): boolean {
  const canon = (r: string) => (r === 'local' ? 'local-container' : r);
  return canon(a) === canon(b);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalidConfig(queue: string | undefined, issues: ValidationIssue[]): LaunchValidationError {
  return new LaunchValidationError({
    code: 'queue_config.invalid',
    stage: 'agent',
    subject: queue === undefined ? 'queue config' : `queue config of "${queue}"`,
    issues,
    hint: 'docs/cli.md#launch-agent-queue shows a queue config; each {{name}} in resource_args needs a declaration under template_variables',
  });
}

/**
 * Validates a queue config, listing every problem with its path, what was expected and what was
 * found: unknown keys (with a "did you mean"), a resource name that is a typo of W&B's, `resource_args`
 * not keyed by the queue's resource, a `{{placeholder}}` with no declaration (or a malformed one, or one
 * in a mapping key), a declaration no placeholder uses, and declarations that break their own rules
 * (a default out of bounds, bounds on a string, …). Throws a LaunchValidationError (code
 * `queue_config.invalid`, stage `agent`).
 */
export function parseQueueConfig(raw: unknown, queue?: string): QueueConfig {
  if (!isPlainObject(raw)) {
    const found = raw === null ? 'null' : Array.isArray(raw) ? 'an array' : raw === undefined ? 'nothing' : typeof raw;
    throw invalidConfig(queue, [
      {
        path: '',
        expected: 'a mapping (a queue config)',
        found,
        message: `expected a mapping with resource, resource_args and template_variables, found ${found}`,
      },
    ]);
  }
  // A manifest pasted directly under resource_args gets one issue saying so, not one per manifest key.
  const rawArgs = raw['resource_args'];
  const manifestKeys = isPlainObject(rawArgs) ? Object.keys(rawArgs).filter((k) => MANIFEST_KEYS.has(k)) : [];
  if (manifestKeys.length > 0) {
    const resource = typeof raw['resource'] === 'string' ? raw['resource'] : '<resource>';
    const found = `${manifestKeys.map((k) => `"${k}"`).join(', ')} directly under resource_args`;
    throw invalidConfig(queue, [
      {
        path: 'resource_args',
        expected: `the resource's arguments under resource_args.${resource}`,
        found,
        message: `found ${found}: W&B keys resource_args by resource, so move them under resource_args.${resource}`,
      },
    ]);
  }
  const result = queueConfigSchema.safeParse(raw);
  if (!result.success) throw invalidConfig(queue, configIssues(result.error, raw, queueConfigSchema, { unknownKey: schemaKeyHint }));
  const config = result.data;
  const issues: ValidationIssue[] = [];

  if (!(WANDB_RESOURCES as readonly string[]).includes(config.resource)) {
    const guess = closest(config.resource, WANDB_RESOURCES);
    if (guess || !RESOURCE_NAME.test(config.resource)) {
      const expected = `a resource name (${WANDB_RESOURCES.join(', ')}, or a lower-case name a custom runner declares)`;
      issues.push({
        path: 'resource',
        expected,
        found: describeValue(config.resource),
        message: `expected ${expected}, found ${describeValue(config.resource)}${guess ? ` (did you mean "${guess}"?)` : ''}`,
      });
    }
  }

  const args = config.resource_args ?? {};
  for (const key of Object.keys(args)) {
    if (sameResource(key, config.resource)) continue;
    issues.push({
      path: `resource_args.${key}`,
      expected: `arguments for the queue's resource only (resource_args.${config.resource})`,
      found: `arguments for "${key}"`,
      message: `the queue runs resource "${config.resource}", so arguments for "${key}" would never be used: put them under resource_args.${config.resource} or set resource: ${key}`,
    });
  }

  const declared = config.template_variables ?? {};
  for (const [name, decl] of Object.entries(declared)) issues.push(...declarationIssues(name, decl));
  const used = new Set<string>();
  for (const use of findPlaceholders(args, 'resource_args')) {
    if (use.inKey) {
      issues.push({
        path: use.path,
        expected: 'placeholders in values only',
        found: `the placeholder ${use.text} in a key`,
        message: `the placeholder ${use.text} is in a mapping key: template variables fill values only`,
      });
    } else if (use.name === undefined) {
      issues.push({
        path: use.path,
        expected: 'a placeholder {{name}} (letters, digits, "_" or "-")',
        found: use.text,
        message: `malformed placeholder ${use.text}: expected {{name}} with a name of letters, digits, "_" or "-" (W&B macros are written \${name})`,
      });
    } else if (!Object.hasOwn(declared, use.name)) {
      const guess = closest(use.name, Object.keys(declared));
      issues.push({
        path: use.path,
        expected: 'a placeholder declared under template_variables',
        found: `the undeclared placeholder ${use.text}`,
        message: `the placeholder ${use.text} has no declaration${guess ? ` (did you mean "${guess}"?)` : ''}: add template_variables.${use.name} with its schema (type string, integer or number)`,
      });
    } else used.add(use.name);
  }
  for (const name of Object.keys(declared)) {
    if (!used.has(name)) {
      issues.push({
        path: `template_variables.${name}`,
        expected: `a {{${name}}} placeholder in resource_args`,
        found: 'a declaration no placeholder uses',
        message: `template variable "${name}" is declared but resource_args has no {{${name}}}: a value given for it would change nothing`,
      });
    }
  }
  if (issues.length > 0) throw invalidConfig(queue, issues);
  return config;
}

/** What {@link mergeQueueConfig} returns. */
export interface MergedSpec {
  /** The spec the queue stores: the caller's, with the queue's `resource` and `resource_args` merged in (as given when nothing applies). */
  spec: unknown;
  /** The variable values used (given ones checked and typed, defaults added). */
  values: Record<string, TemplateValue>;
}

/**
 * Merges a queue config into a launch spec as W&B's server does when an item is pushed to a queue
 * with a config (docs/launch-spec.md, "Queue configs"):
 *
 * - template variable values: the spec's `template_variables` key, overridden name by name by
 *   `templateVariables` (as W&B's `launch_add` does); the key is removed from the stored spec. Each is
 *   checked against its declaration; defaults fill the rest; every variable must end with a value.
 * - `resource`: the queue's. A spec that names another resource is refused (W&B would silently run it on
 *   the queue's resource).
 * - `resource_args`: the queue's rendered template, with the spec's own `resource_args.<resource>` keys on
 *   top (a key the spec sets replaces the queue's whole value for that key). When template variable
 *   values are given, W&B drops the spec's `resource_args` ("only one can be set"): here a spec that has
 *   both is refused rather than dropped, as is a spec with arguments for another resource.
 * - A `{{placeholder}}` left anywhere in the merged `resource_args` is refused. W&B macros (`${run_id}`, …)
 *   are left for the agent to fill.
 *
 * Without a config, a spec that carries template variable values is refused (the queue declares none);
 * any other spec is returned as it is. Throws LaunchValidationErrors (stage `agent`) whose issues name
 * the field, what was expected and what was found. The inputs are not modified.
 */
export function mergeQueueConfig(
  config: QueueConfig | undefined,
  spec: unknown,
  options: { queue: string; templateVariables?: Readonly<Record<string, unknown>> | undefined },
): MergedSpec {
  const { queue } = options;
  const valuesGiven = Object.keys(options.templateVariables ?? {}).length > 0;
  const specValues = isPlainObject(spec) ? spec['template_variables'] : undefined;
  // No config and no values: the spec is stored as it is, whatever it is (the agent validates it).
  if (!config && !valuesGiven && (specValues === undefined || specValues === null || (isPlainObject(specValues) && Object.keys(specValues).length === 0))) {
    return { spec, values: {} };
  }
  if (!isPlainObject(spec)) {
    const found = spec === null ? 'null' : Array.isArray(spec) ? 'an array' : spec === undefined ? 'nothing' : typeof spec;
    throw specConflict(queue, [{ path: '', expected: 'an object (a launch spec)', found, message: `expected an object, found ${found}` }]);
  }
  const fromSpec = spec['template_variables'];
  if (fromSpec !== undefined && fromSpec !== null && !isPlainObject(fromSpec)) {
    throw specConflict(queue, [
      {
        path: 'template_variables',
        expected: 'a mapping of variable names to values',
        found: describeValue(fromSpec),
        message: `expected a mapping of variable names to values, found ${describeValue(fromSpec)}`,
      },
    ]);
  }
  const given: Record<string, unknown> = { ...(fromSpec ?? {}), ...(options.templateVariables ?? {}) };
  const hasValues = Object.keys(given).length > 0;
  if (!config) {
    if (hasValues) resolveTemplateValues({}, given, queue);
    return { spec, values: {} };
  }
  const values = resolveTemplateValues(config.template_variables ?? {}, given, queue);

  const issues: ValidationIssue[] = [];
  const resource = config.resource;
  const specResource = spec['resource'];
  if (typeof specResource === 'string' && specResource !== '' && !sameResource(specResource, resource)) {
    issues.push({
      path: 'resource',
      expected: `"${resource}" (the resource of queue "${queue}") or nothing`,
      found: describeValue(specResource),
      message: `queue "${queue}" runs resource "${resource}" (its queue config), but the spec says ${describeValue(specResource)}: W&B would run it as "${resource}"; remove resource from the spec or use a queue for ${describeValue(specResource)}`,
    });
  }
  const specArgs = spec['resource_args'];
  const ownArgs = isPlainObject(specArgs) ? specArgs : {};
  if (specArgs !== undefined && specArgs !== null && !isPlainObject(specArgs)) {
    issues.push({
      path: 'resource_args',
      expected: 'a mapping of resource names to their arguments',
      found: describeValue(specArgs),
      message: `expected a mapping of resource names to their arguments, found ${describeValue(specArgs)}`,
    });
  }
  if (hasValues && Object.keys(ownArgs).length > 0) {
    issues.push({
      path: 'resource_args',
      expected: 'resource_args or template variable values, not both',
      found: `resource_args for ${Object.keys(ownArgs)
        .map((k) => `"${k}"`)
        .join(', ')} and values for ${Object.keys(given)
        .map((k) => `"${k}"`)
        .join(', ')}`,
      message: `the spec has resource_args and template variable values were given: only one can be set (W&B's client drops the resource_args); remove resource_args to fill the queue's template, or give no template variables to override its keys`,
    });
  }
  let own: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(ownArgs)) {
    if (!sameResource(key, resource)) {
      issues.push({
        path: `resource_args.${key}`,
        expected: `arguments for "${resource}" (the resource of queue "${queue}")`,
        found: `arguments for "${key}"`,
        message: `queue "${queue}" runs resource "${resource}": arguments for "${key}" would never be used; put them under resource_args.${resource}`,
      });
    } else if (isPlainObject(value)) own = { ...own, ...value };
    else
      issues.push({
        path: `resource_args.${key}`,
        expected: "a mapping (the resource's arguments)",
        found: describeValue(value),
        message: `expected a mapping (the resource's arguments), found ${describeValue(value)}`,
      });
  }
  if (issues.length > 0) throw specConflict(queue, issues);

  const template = (config.resource_args ?? {})[Object.keys(config.resource_args ?? {}).find((k) => sameResource(k, resource)) ?? resource] ?? {};
  const rendered = renderTemplate(template, values) as Record<string, unknown>;
  const mergedArgs = { ...rendered, ...own };
  const unfilled = Object.entries(mergedArgs).flatMap(([key, value]) =>
    unfilledPlaceholderIssues(value, `resource_args.${resource}.${key}`, () =>
      Object.hasOwn(own, key) ? "it is in the spec's own resource_args, and only the queue's template is filled" : 'no template variable of the queue fills it',
    ),
  );
  if (unfilled.length > 0) throw specConflict(queue, unfilled);

  const { template_variables: _dropped, ...rest } = spec;
  return { spec: { ...rest, resource, resource_args: { [resource]: mergedArgs } }, values };
}

function specConflict(queue: string, issues: ValidationIssue[]): LaunchValidationError {
  return new LaunchValidationError({
    code: 'spec.invalid',
    stage: 'agent',
    subject: `launch spec for queue "${queue}"`,
    issues,
    hint: `"launch-agent queue show ${queue}" shows the queue's config; docs/launch-spec.md#queue-configs explains the merge`,
  });
}
