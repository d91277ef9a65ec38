import { LaunchValidationError } from '@launch/core';
import { describeValue, firstControlCharacter } from '@launch/core/internal';

/** A `gs://bucket/prefix` location. */
export interface GcsLocation {
  bucket: string;
  /** Without leading or trailing slashes; empty for the bucket's root. */
  prefix: string;
}

function bad(uri: unknown, message: string): LaunchValidationError {
  return new LaunchValidationError({
    code: 'context_store.invalid_uri',
    stage: 'agent',
    subject: 'GCS context store',
    issues: [{ path: 'uri', expected: 'gs://<bucket>/<prefix>', found: describeValue(uri, 120), message }],
  });
}

/**
 * Why `bucket` is not a GCS bucket name, or undefined: 3–63 characters (222 with dots, 63 per
 * dot-separated part) of lower-case letters, digits, `-`, `_` and `.`, starting and ending with a
 * letter or digit, not an IP address, not starting with `goog` nor containing `google`.
 */
export function bucketProblemOf(bucket: string): string | undefined {
  const max = bucket.includes('.') ? 222 : 63;
  if (bucket.length < 3 || bucket.length > max) return `is ${bucket.length} characters long (3–${max})`;
  if (/[A-Z]/.test(bucket)) return 'has upper-case letters';
  if (!/^[a-z0-9][a-z0-9._-]*[a-z0-9]$/.test(bucket))
    return 'may hold only lower-case letters, digits, -, _ and ., and must start and end with a letter or digit';
  if (bucket.split('.').some((part) => part.length > 63 || part === '')) return 'has a dot-separated part that is empty or longer than 63 characters';
  if (/^\d+\.\d+\.\d+\.\d+$/.test(bucket)) return 'is formatted as an IP address';
  if (bucket.startsWith('goog') || /g[o0][o0]gle/.test(bucket)) return 'starts with "goog" or contains "google" (reserved by GCS)';
  return undefined;
}

/**
 * Why `name` cannot be an object name here, or undefined. GCS allows almost any UTF-8 up to 1024
 * bytes; we also refuse what kaniko's `gs://` context or a shell would misread: control characters,
 * `# ? [ ] * \`, empty, `.` and `..` path segments, and a leading `/`.
 */
export function objectNameProblemOf(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (Buffer.byteLength(name, 'utf8') > 1024) return 'is longer than 1024 bytes';
  if (firstControlCharacter(name) !== undefined) return 'has a control character';
  if (/[#?[\]*\\]/.test(name)) return 'has one of # ? [ ] * \\ (GCS tools treat them as wildcards or URL parts)';
  if (name.startsWith('/')) return 'starts with "/"';
  if (name.split('/').some((s) => s === '' || s === '.' || s === '..')) return 'has an empty, "." or ".." path segment';
  if (name.startsWith('.well-known/acme-challenge/')) return 'is under .well-known/acme-challenge/ (reserved by GCS)';
  return undefined;
}

/** Parses `gs://<bucket>[/<prefix>]` (the config's `build-context-store`), naming what is wrong. */
export function parseGcsUri(uri: string): GcsLocation {
  if (typeof uri !== 'string' || !uri.startsWith('gs://')) throw bad(uri, `expected gs://<bucket>/<prefix>, found ${describeValue(uri, 120)}`);
  const rest = uri.slice('gs://'.length).replace(/\/+$/, '');
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  const prefix = slash === -1 ? '' : rest.slice(slash + 1);
  if (bucket === '') throw bad(uri, `${describeValue(uri)} names no bucket`);
  const bucketProblem = bucketProblemOf(bucket);
  if (bucketProblem) throw bad(uri, `bucket ${describeValue(bucket)} ${bucketProblem}`);
  if (prefix) {
    const problem = objectNameProblemOf(prefix);
    if (problem) throw bad(uri, `prefix ${describeValue(prefix)} ${problem}`);
  }
  return { bucket, prefix };
}

/** `gs://bucket/key` → its parts, or undefined. */
export function splitGcsObjectUri(uri: string): { bucket: string; name: string } | undefined {
  const m = typeof uri === 'string' ? /^gs:\/\/([^/]+)\/(.+)$/.exec(uri) : null;
  return m ? { bucket: m[1]!, name: m[2]! } : undefined;
}
