import { LaunchValidationError } from '@launch/core';
import { describeValue, firstControlCharacter } from '@launch/core/internal';

/** A parsed `s3://bucket/prefix` location. */
export interface S3Location {
  bucket: string;
  /** Key prefix without leading or trailing `/`; empty for the bucket's root. */
  prefix: string;
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

function bad(path: string, value: string, message: string, expected: string): LaunchValidationError {
  return new LaunchValidationError({
    code: 'aws.invalid_options',
    stage: 'agent',
    subject: 'S3 context store',
    issues: [{ path, expected, found: describeValue(value, 120), message }],
  });
}

/** Why `bucket` is not a valid S3 bucket name, or undefined when it is. */
export function bucketNameProblem(bucket: string): string | undefined {
  if (bucket.length < 3 || bucket.length > 63) return `is ${bucket.length} characters long; bucket names have 3 to 63`;
  if (/[A-Z_]/.test(bucket)) return 'has upper-case letters or underscores; bucket names are lower case letters, digits, dots and hyphens';
  if (!BUCKET.test(bucket)) return 'must be lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit';
  if (/\.\.|\.-|-\./.test(bucket)) return 'has two adjacent periods or a period next to a hyphen';
  if (/^\d+\.\d+\.\d+\.\d+$/.test(bucket)) return 'is formatted as an IP address';
  return undefined;
}

/** Parses `s3://bucket[/prefix]` (W&B's `build-context-store` for AWS). */
export function parseS3Uri(uri: string, path = 'uri'): S3Location {
  if (typeof uri !== 'string' || !uri.startsWith('s3://')) {
    throw bad(path, String(uri), `expected s3://<bucket>/<prefix>, found ${describeValue(uri, 120)}`, 's3://<bucket>/<prefix>');
  }
  const rest = uri.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  const prefix = (slash === -1 ? '' : rest.slice(slash + 1)).replace(/^\/+|\/+$/g, '');
  if (!bucket) throw bad(path, uri, `names no bucket: expected s3://<bucket>/<prefix>, found ${describeValue(uri, 120)}`, 's3://<bucket>/<prefix>');
  const problem = bucketNameProblem(bucket);
  if (problem) throw bad(path, uri, `bucket ${describeValue(bucket)} ${problem}`, 'a valid S3 bucket name');
  const keyProblem = prefix ? keyProblemOf(prefix) : undefined;
  if (keyProblem) throw bad(path, uri, `prefix ${describeValue(prefix)} ${keyProblem}`, 'a key prefix of safe characters');
  return { bucket, prefix };
}

/**
 * Characters refused in keys: control characters, and those AWS advises to avoid or that kaniko or
 * a shell would read differently (`\ { } ^ % \` [ ] " < > # | ?`).
 */
const REFUSED = /[\\{}^%`[\]"<>#|?]/;

/** Why `key` cannot be used as an object key (or key prefix), or undefined when it can. */
export function keyProblemOf(key: string): string | undefined {
  if (key === '') return 'is empty';
  if (key.startsWith('/')) return 'starts with "/"';
  const control = firstControlCharacter(key);
  const refused = control ?? REFUSED.exec(key)?.[0];
  if (refused !== undefined) {
    const shown = control !== undefined ? `control character U+${control.charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}` : `"${refused}"`;
    return `contains ${shown}, which S3 keys here may not hold (refused: control characters and \\ { } ^ % \` [ ] " < > # | ?)`;
  }
  if (key.split('/').some((segment) => segment === '' || segment === '.' || segment === '..')) return 'has an empty, "." or ".." path segment';
  if (Buffer.byteLength(key, 'utf8') > 1024) return `is ${Buffer.byteLength(key, 'utf8')} bytes long; S3 keys have at most 1024`;
  return undefined;
}

/** `s3://bucket/key` → `{ bucket, key }`, or undefined when `uri` is not of that form. */
export function splitS3ObjectUri(uri: string): { bucket: string; key: string } | undefined {
  if (typeof uri !== 'string' || !uri.startsWith('s3://')) return undefined;
  const rest = uri.slice(5);
  const slash = rest.indexOf('/');
  if (slash <= 0 || slash === rest.length - 1) return undefined;
  return { bucket: rest.slice(0, slash), key: rest.slice(slash + 1) };
}
