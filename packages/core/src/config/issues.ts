import { z } from 'zod';
import type { ValidationIssue } from '../errors.js';
import { closest, describeValue, formatPath, valueAt, zodIssues } from '../validation.js';

/** Config paths whose values are secrets: an issue there never shows the value. */
export const SECRET_PATHS: ReadonlySet<string> = new Set(['api_key']);

/** Describes a found value, hiding secrets (only the kind of value is shown). */
export function describeFound(path: string, value: unknown, secretPaths: ReadonlySet<string> = SECRET_PATHS): string {
  if (secretPaths.has(path) && value !== undefined) {
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
    // Below a record, every key holds the record's value schema.
    if (cur instanceof z.ZodRecord) return undefined;
    cur = (cur as { def?: { innerType?: unknown } }).def?.innerType;
  }
  return undefined;
}

/** The record schema under optional/default wrappers, if any. */
function unwrapRecord(schema: unknown): z.ZodRecord | undefined {
  let cur = schema;
  for (let i = 0; i < 8 && cur; i++) {
    if (cur instanceof z.ZodRecord) return cur;
    if (cur instanceof z.ZodObject) return undefined;
    cur = (cur as { def?: { innerType?: unknown } }).def?.innerType;
  }
  return undefined;
}

/** The keys declared at `path` inside `root`, for "did you mean" suggestions. */
function keysAt(root: z.ZodType, path: ReadonlyArray<PropertyKey>): string[] {
  let cur: unknown = root;
  for (const part of path) {
    const record = unwrapRecord(cur);
    cur = record ? record.def.valueType : (unwrapObject(cur)?.shape as Record<string, unknown> | undefined)?.[String(part)];
  }
  const obj = unwrapObject(cur);
  return obj ? Object.keys(obj.shape) : [];
}

export interface IssueOptions {
  /** Paths whose values are secrets (default: the config's `api_key`). */
  secretPaths?: ReadonlySet<string>;
  /**
   * A full message for an unknown key that is a known mistake (a key that moved, a legacy key);
   * undefined falls back to "unknown key" with a "did you mean" among the keys declared there.
   */
  unknownKey?: (key: string, at: ReadonlyArray<PropertyKey>) => string | undefined;
}

/**
 * Converts zod issues of a config parse into ValidationIssues reading "expected …, found …", with a
 * "did you mean" for unknown keys and misspelt enum values, and secrets never shown. The schema's
 * error texts are noun phrases (see schema.ts), so they complete "expected …".
 */
export function configIssues(error: z.ZodError, input: unknown, schema: z.ZodType, options: IssueOptions = {}): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const special = options.unknownKey?.(key, issue.path);
        if (special !== undefined) {
          out.push({ path: formatPath([...issue.path, key]), expected: 'a known key', found: `unknown key "${key}"`, message: special });
          continue;
        }
        const suggest = (k: string, at: ReadonlyArray<PropertyKey>) => closest(k, keysAt(schema, at));
        out.push(...zodIssues(new z.ZodError([{ ...issue, keys: [key] }]), input, suggest));
      }
      continue;
    }
    const path = formatPath(issue.path);
    const value = valueAt(input, issue.path);
    const found = describeFound(path, value, options.secretPaths);
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
