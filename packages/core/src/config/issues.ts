import { z } from 'zod';
import type { ValidationIssue } from '../errors.js';
import { closest, describeValue, formatPath, valueAt, zodIssues } from '../validation.js';

/** Config paths whose values are secrets: an issue there never shows the value. */
export const SECRET_PATHS: ReadonlySet<string> = new Set(['api_key']);

/** Describes a found value, hiding secrets (only the kind of value is shown). */
export function describeFound(path: string, value: unknown): string {
  if (SECRET_PATHS.has(path) && value !== undefined) {
    const kind = Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}`;
    return `${kind} (secret, not shown)`;
  }
  return describeValue(value);
}

/** The object schema under optional/default wrappers, if any. */
function unwrapObject(schema: unknown): z.ZodObject | undefined {
  let cur = schema;
  for (let i = 0; i < 8 && cur; i++) {
    if (cur instanceof z.ZodObject) return cur;
    cur = (cur as { def?: { innerType?: unknown } }).def?.innerType;
  }
  return undefined;
}

/** The keys declared at `path` inside `root`, for "did you mean" suggestions. */
function keysAt(root: z.ZodType, path: ReadonlyArray<PropertyKey>): string[] {
  let cur: unknown = root;
  for (const part of path) cur = (unwrapObject(cur)?.shape as Record<string, unknown> | undefined)?.[String(part)];
  const obj = unwrapObject(cur);
  return obj ? Object.keys(obj.shape) : [];
}

/**
 * Converts zod issues of a config parse into ValidationIssues reading "expected …, found …", with a
 * "did you mean" for unknown keys and misspelt enum values, and secrets never shown. The schema's
 * error texts are noun phrases (see schema.ts), so they complete "expected …".
 */
export function configIssues(error: z.ZodError, input: unknown, schema: z.ZodType): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      const suggest = (key: string, at: ReadonlyArray<PropertyKey>) => closest(key, keysAt(schema, at));
      out.push(...zodIssues(new z.ZodError([issue]), input, suggest));
      continue;
    }
    const path = formatPath(issue.path);
    const value = valueAt(input, issue.path);
    const found = describeFound(path, value);
    let expected: string;
    let guess: string | undefined;
    if (issue.code === 'invalid_value') {
      const values = issue.values.map(String);
      expected = `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`;
      if (typeof value === 'string') guess = closest(value, values);
    } else {
      expected = issue.message.startsWith('Invalid input: expected ')
        ? issue.message.slice('Invalid input: expected '.length).replace(/, received .*$/, '')
        : issue.message;
    }
    const message = `expected ${expected}, found ${found}${guess ? ` (did you mean "${guess}"?)` : ''}`;
    out.push({ path, expected, found, message });
  }
  return out;
}
