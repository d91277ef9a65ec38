import { z } from 'zod';
import { configIssues } from '../config/issues.js';
import { LaunchValidationError, type ValidationIssue } from '../errors.js';
import { closest, describeValue } from '../validation.js';

/**
 * W&B queue template variables: a queue config's `resource_args` may hold `{{name}}` placeholders, each
 * declared under `template_variables` with a JSON-schema-like type, bounds, choices and a default (W&B's
 * `create_run_queue(template_variables={"cpu": {"schema": {"type": "integer", "minimum": 1}}})`). Values
 * come from `enqueue --template-var name=value` (W&B's `--set-var`) or a spec's `template_variables`, are
 * checked against the declaration, and fill the placeholders. W&B macros (`${run_id}`, `${image_uri}`, …)
 * are a different syntax and are left for the agent.
 */

/** W&B's variable types (its UI calls them string, integer and float). */
export const TEMPLATE_VARIABLE_TYPES = ['string', 'integer', 'number'] as const;
export type TemplateVariableType = (typeof TEMPLATE_VARIABLE_TYPES)[number];
/** Names the W&B UI shows, accepted as aliases of `integer` and `number`. */
const TYPE_ALIASES: Record<string, TemplateVariableType> = { int: 'integer', float: 'number' };

/** A variable name: what may stand between `{{` and `}}`. */
export const TEMPLATE_VARIABLE_NAME = /^[A-Za-z0-9_-]{1,64}$/;
/** Any `{{…}}` in a string; the content decides whether it is a well-formed placeholder. */
const BRACES = /\{\{([^{}]*)\}\}/g;
const WHOLE = /^\{\{\s*([A-Za-z0-9_-]{1,64})\s*\}\}$/;

/** A value a template variable takes. */
export type TemplateValue = string | number;

const scalar = z.union([z.string(), z.number()], { error: 'a string or a number' });

/** The declaration of one variable, W&B's shape: `{schema: {type, minimum, maximum, enum, default}, description}`. */
export const templateVariableSchema = z.strictObject(
  {
    description: z.string({ error: 'a string' }).max(1000, { error: 'a string of at most 1,000 characters' }).optional(),
    schema: z.strictObject(
      {
        type: z.enum([...TEMPLATE_VARIABLE_TYPES, 'int', 'float'], { error: 'one of "string", "integer" (or "int"), "number" (or "float")' }),
        minimum: z.number({ error: 'a number' }).optional(),
        maximum: z.number({ error: 'a number' }).optional(),
        enum: z
          .array(scalar, { error: 'a list of allowed values' })
          .min(1, { error: 'a non-empty list of allowed values' })
          .max(1000, { error: 'at most 1,000 allowed values' })
          .optional(),
        default: scalar.optional(),
      },
      { error: 'a mapping with type, and optionally minimum, maximum, enum and default' },
    ),
  },
  { error: 'a mapping with schema (and optionally description)' },
);
export type TemplateVariableDeclaration = z.infer<typeof templateVariableSchema>;

/** The type a declaration means, aliases resolved. */
export function variableType(decl: TemplateVariableDeclaration): TemplateVariableType {
  return TYPE_ALIASES[decl.schema.type] ?? (decl.schema.type as TemplateVariableType);
}

/** "an integer between 1 and 4", "one of "a", "b"", …: what a variable accepts, for messages. */
export function describeExpected(decl: TemplateVariableDeclaration): string {
  const s = decl.schema;
  const type = variableType(decl);
  if (s.enum) return `one of ${s.enum.map((v) => JSON.stringify(v)).join(', ')}`;
  const noun = type === 'integer' ? 'an integer' : type === 'number' ? 'a number' : 'a string';
  if (s.minimum !== undefined && s.maximum !== undefined) return `${noun} between ${s.minimum} and ${s.maximum}`;
  if (s.minimum !== undefined) return `${noun} >= ${s.minimum}`;
  if (s.maximum !== undefined) return `${noun} <= ${s.maximum}`;
  return noun;
}

const INTEGER_TEXT = /^[+-]?\d+$/;
const NUMBER_TEXT = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Checks one value against its declaration. A string is parsed for `integer` and `number` (values from a
 * command line are strings); a number given for a `string` variable is refused (quote it). Returns the
 * typed value, or an issue whose path is `template_variables.<name>`.
 */
export function checkTemplateValue(
  name: string,
  decl: TemplateVariableDeclaration,
  raw: unknown,
  origin = 'value',
): { value: TemplateValue } | { issue: ValidationIssue } {
  const path = `template_variables.${name}`;
  const expected = describeExpected(decl);
  const fail = (found: string, extra = ''): { issue: ValidationIssue } => ({
    issue: { path, expected, found, message: `template variable "${name}": expected ${expected}, found ${found}${extra}` },
  });
  const type = variableType(decl);
  let value: TemplateValue;
  if (type === 'string') {
    if (typeof raw !== 'string') return fail(`${origin} ${describeValue(raw)}`, typeof raw === 'number' ? ' (quote it: the variable is a string)' : '');
    value = raw;
  } else {
    const pattern = type === 'integer' ? INTEGER_TEXT : NUMBER_TEXT;
    if (typeof raw === 'number') value = raw;
    else if (typeof raw === 'string' && pattern.test(raw.trim())) value = Number(raw.trim());
    else return fail(`${origin} ${describeValue(raw)}`);
    if (!Number.isFinite(value) || (type === 'integer' && !Number.isSafeInteger(value))) return fail(`${origin} ${describeValue(raw)}`);
    const s = decl.schema;
    if ((s.minimum !== undefined && value < s.minimum) || (s.maximum !== undefined && value > s.maximum)) return fail(`${origin} ${value}`);
  }
  if (decl.schema.enum && !decl.schema.enum.some((allowed) => allowed === value)) {
    const guess =
      typeof value === 'string'
        ? closest(
            value,
            decl.schema.enum.filter((v): v is string => typeof v === 'string'),
          )
        : undefined;
    return fail(`${origin} ${describeValue(value)}`, guess ? ` (did you mean "${guess}"?)` : '');
  }
  return { value };
}

/** Problems in a declaration itself (bounds on a string, a default or enum value that breaks its own rules). */
export function declarationIssues(name: string, decl: TemplateVariableDeclaration): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  const at = `template_variables.${name}.schema`;
  const s = decl.schema;
  const type = variableType(decl);
  if (!TEMPLATE_VARIABLE_NAME.test(name)) {
    const expected = 'a variable name of letters, digits, "_" or "-" (at most 64)';
    out.push({
      path: `template_variables.${name}`,
      expected,
      found: `the name ${JSON.stringify(name)}`,
      message: `expected ${expected}, found the name ${JSON.stringify(name)}`,
    });
  }
  if (type === 'string') {
    for (const key of ['minimum', 'maximum'] as const) {
      if (s[key] !== undefined) {
        out.push({
          path: `${at}.${key}`,
          expected: 'no bound on a string variable',
          found: `${key} ${s[key]}`,
          message: `${key} applies to integer and number variables only; this one is a string (use enum to restrict a string)`,
        });
      }
    }
  } else if (s.minimum !== undefined && s.maximum !== undefined && s.minimum > s.maximum) {
    out.push({
      path: `${at}.minimum`,
      expected: `a minimum <= the maximum ${s.maximum}`,
      found: `minimum ${s.minimum}`,
      message: `expected a minimum <= the maximum ${s.maximum}, found ${s.minimum}`,
    });
  }
  const bare: TemplateVariableDeclaration = {
    schema: { type: s.type, ...(s.minimum !== undefined ? { minimum: s.minimum } : {}), ...(s.maximum !== undefined ? { maximum: s.maximum } : {}) },
  };
  (s.enum ?? []).forEach((v, i) => {
    if (typeof v !== (type === 'string' ? 'string' : 'number')) {
      const expected = type === 'string' ? 'a string' : type === 'integer' ? 'an integer' : 'a number';
      out.push({
        path: `${at}.enum[${i}]`,
        expected,
        found: describeValue(v),
        message: `expected ${expected} (the variable's type), found ${describeValue(v)}`,
      });
      return;
    }
    const checked = checkTemplateValue(name, bare, v);
    if ('issue' in checked)
      out.push({
        ...checked.issue,
        path: `${at}.enum[${i}]`,
        message: `enum value ${describeValue(v)} breaks the variable's own type or bounds: expected ${checked.issue.expected}`,
      });
  });
  if (s.default !== undefined) {
    const typed = type === 'string' ? typeof s.default === 'string' : typeof s.default === 'number';
    const checked = typed ? checkTemplateValue(name, decl, s.default, 'default') : undefined;
    if (!typed || (checked && 'issue' in checked)) {
      const expected = describeExpected(decl);
      out.push({
        path: `${at}.default`,
        expected,
        found: describeValue(s.default),
        message: `the default must be ${expected}, found ${describeValue(s.default)}`,
      });
    }
  }
  return out;
}

/** Parses template variable declarations (W&B's `template_variables` mapping), every problem listed. */
export function parseTemplateVariables(raw: unknown, subject = 'template variable declarations'): Record<string, TemplateVariableDeclaration> {
  const schema = z.record(z.string(), templateVariableSchema, { error: 'a mapping of variable names to declarations' });
  const result = schema.safeParse(raw);
  const issues: ValidationIssue[] = [];
  if (!result.success) issues.push(...prefixed(configIssues(result.error, raw, schema, { unknownKey: schemaKeyHint }), 'template_variables'));
  else for (const [name, decl] of Object.entries(result.data)) issues.push(...declarationIssues(name, decl));
  if (issues.length > 0) throw new LaunchValidationError({ code: 'queue_config.invalid', stage: 'agent', subject, issues });
  return result.data!;
}

/** JSON-schema spellings people reach for inside a variable's `schema`, with the key W&B reads. */
const SCHEMA_KEY_MOVES: Record<string, string> = { min: 'minimum', max: 'maximum', values: 'enum', choices: 'enum', options: 'enum', allowed: 'enum' };

/** A "did you mean" for a misspelt key inside `template_variables.<name>.schema` (for `configIssues`). */
export function schemaKeyHint(key: string, at: ReadonlyArray<PropertyKey>): string | undefined {
  const moved = at[at.length - 1] === 'schema' && Object.hasOwn(SCHEMA_KEY_MOVES, key) ? SCHEMA_KEY_MOVES[key] : undefined;
  return moved ? `unknown key "${key}" (did you mean "${moved}"?)` : undefined;
}

function prefixed(issues: ValidationIssue[], prefix: string): ValidationIssue[] {
  return issues.map((i) => ({ ...i, path: i.path ? `${prefix}.${i.path}` : prefix }));
}

/** Where a `{{…}}` was found: the placeholder's name (undefined when malformed), its text and its path. */
export interface PlaceholderUse {
  name: string | undefined;
  text: string;
  path: string;
  /** True when the `{{…}}` sits in a mapping key, where W&B fills nothing. */
  inKey?: boolean;
}

/** Every `{{…}}` in the strings (and keys) of a JSON value, with its dotted path. */
export function findPlaceholders(value: unknown, path = ''): PlaceholderUse[] {
  const out: PlaceholderUse[] = [];
  const scan = (text: string, at: string, inKey: boolean) => {
    for (const m of text.matchAll(BRACES)) {
      const inner = m[1]!.trim();
      out.push({ name: TEMPLATE_VARIABLE_NAME.test(inner) ? inner : undefined, text: m[0], path: at, ...(inKey ? { inKey } : {}) });
    }
  };
  const walk = (v: unknown, at: string) => {
    if (typeof v === 'string') scan(v, at, false);
    else if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${at}[${i}]`));
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        const child = at ? `${at}.${k}` : k;
        scan(k, child, true);
        walk(x, child);
      }
    }
  };
  walk(value, path);
  return out;
}

/**
 * Fills `{{name}}` placeholders with checked values. A string that is one placeholder and nothing else
 * becomes the value itself (a number stays a number, so `backoffLimit: "{{retries}}"` gives an integer);
 * a placeholder inside a longer string is replaced by the value's text. Placeholders whose name has no
 * value are left as they are ({@link unfilledPlaceholderIssues} reports them). The input is not modified.
 */
export function renderTemplate(template: unknown, values: Readonly<Record<string, TemplateValue>>): unknown {
  if (typeof template === 'string') {
    const whole = WHOLE.exec(template);
    if (whole && Object.hasOwn(values, whole[1]!)) return values[whole[1]!];
    return template.replace(BRACES, (m, inner: string) => {
      const name = inner.trim();
      return TEMPLATE_VARIABLE_NAME.test(name) && Object.hasOwn(values, name) ? String(values[name]) : m;
    });
  }
  if (Array.isArray(template)) return template.map((v) => renderTemplate(v, values));
  if (template && typeof template === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(template)) out[k] = renderTemplate(v, values);
    return out;
  }
  return template;
}

/** One issue per `{{…}}` still in `value` (under `path`): a placeholder nobody filled. */
export function unfilledPlaceholderIssues(value: unknown, path: string, why: (use: PlaceholderUse) => string): ValidationIssue[] {
  return findPlaceholders(value, path).map((use) => ({
    path: use.path,
    expected: 'a value, not a placeholder',
    found: `the placeholder ${use.text}`,
    message: `the placeholder ${use.text} is left unfilled: ${why(use)}`,
  }));
}

/**
 * Checks the values given for a queue's variables and adds the defaults: every variable gets a value,
 * or the error lists each one that has none, each unknown name (with a "did you mean") and each bad
 * value, naming what was expected and what was found. `queue` names the queue in messages.
 */
export function resolveTemplateValues(
  declarations: Readonly<Record<string, TemplateVariableDeclaration>>,
  given: Readonly<Record<string, unknown>>,
  queue: string,
): Record<string, TemplateValue> {
  const issues: ValidationIssue[] = [];
  const values: Record<string, TemplateValue> = {};
  const names = Object.keys(declarations);
  for (const [name, raw] of Object.entries(given)) {
    if (Object.hasOwn(declarations, name)) continue;
    const guess = closest(name, names);
    const known = names.length > 0 ? `its variables are ${names.map((n) => `"${n}"`).join(', ')}` : 'it declares no template variables';
    issues.push({
      path: `template_variables.${name}`,
      expected: names.length > 0 ? `one of the queue's variables (${names.join(', ')})` : 'no template variables',
      found: `the unknown variable "${name}" = ${describeValue(raw)}`,
      message: `queue "${queue}" has no template variable "${name}"${guess ? ` (did you mean "${guess}"?)` : ''}: ${known}`,
    });
  }
  for (const [name, decl] of Object.entries(declarations)) {
    if (Object.hasOwn(given, name)) {
      const checked = checkTemplateValue(name, decl, given[name]);
      if ('issue' in checked) issues.push(checked.issue);
      else values[name] = checked.value;
    } else if (decl.schema.default !== undefined) {
      values[name] = decl.schema.default;
    } else {
      const expected = describeExpected(decl);
      issues.push({
        path: `template_variables.${name}`,
        expected,
        found: 'no value (and the variable has no default)',
        message: `template variable "${name}" needs a value: expected ${expected}, found none, and it has no default (give --template-var ${name}=VALUE)`,
      });
    }
  }
  if (issues.length > 0) {
    throw new LaunchValidationError({
      code: 'template_variables.invalid',
      stage: 'agent',
      subject: `template variables for queue "${queue}"`,
      issues,
      hint: `"launch-agent queue show ${queue}" lists the queue's variables with their types and bounds`,
    });
  }
  return values;
}
