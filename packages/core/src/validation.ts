import type { z } from 'zod';
import type { ValidationIssue } from './errors.js';

/** Renders a value briefly for an error message, never dumping huge inputs. */
export function describeValue(value: unknown, max = 60): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') {
    const shown = value.length > max ? `${value.slice(0, max)}… (${value.length} characters)` : value;
    return JSON.stringify(shown);
  }
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

/** Formats a zod path as `a.b[2].c`. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

/** The value at a zod path inside `root`, or undefined. */
export function valueAt(root: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let cur: unknown = root;
  for (const part of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[part as string];
  }
  return cur;
}

/**
 * Converts zod issues into ValidationIssues that name the field, what was expected and what was found.
 * `suggest` may offer a "did you mean" for unknown keys.
 */
export function zodIssues(
  error: z.ZodError,
  input: unknown,
  suggest?: (key: string, path: ReadonlyArray<PropertyKey>) => string | undefined,
): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  for (const issue of error.issues) {
    const found = valueAt(input, issue.path);
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const path = formatPath([...issue.path, key]);
        const guess = suggest?.(key, issue.path);
        out.push({
          path,
          expected: 'a known key',
          found: `unknown key "${key}"`,
          message: `unknown key "${key}"${guess ? ` (did you mean "${guess}"?)` : ''}`,
        });
      }
      continue;
    }
    const path = formatPath(issue.path);
    let expected: string = issue.message;
    if (issue.code === 'invalid_type') expected = String(issue.expected);
    else if (issue.code === 'invalid_value') expected = `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    const foundText = describeValue(found);
    const message =
      issue.code === 'invalid_type' || issue.code === 'invalid_value' ? `expected ${expected}, found ${foundText}` : `${issue.message} (found ${foundText})`;
    out.push({ path, expected, found: foundText, message });
  }
  return out;
}

/** Levenshtein distance, for "did you mean" suggestions. */
export function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}

/** The closest candidate within a small edit distance, if any. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  const lower = word.toLowerCase().replace(/[-_]/g, '');
  for (const c of candidates) {
    const d = editDistance(lower, c.toLowerCase().replace(/[-_]/g, ''));
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** The first control character (U+0000–U+001F, U+007F) of `text`, or undefined when it has none. */
export function firstControlCharacter(text: string): string | undefined {
  for (const ch of text) {
    const code = ch.charCodeAt(0);
    if (code <= 0x1f || code === 0x7f) return ch;
  }
  return undefined;
}
