import * as models from '@kubernetes/client-node';
import { LaunchValidationError, type ValidationIssue } from '@launch/core';
import { describeValue } from '@launch/core/internal';

/**
 * Checks a rendered manifest against the Kubernetes schema of its kind before it is submitted, so a field the API
 * server would drop (it decodes into Go structs and, unless strict, drops what they lack) is refused here with its
 * JSON path. The schema is the one `@kubernetes/client-node` was generated from (its models' attribute maps).
 */

type Obj = Record<string, unknown>;
const isRecord = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

interface Attribute {
  baseName: string;
  type: string;
}
type ModelClass = { getAttributeTypeMap?: () => Attribute[] };
const registry = models as unknown as Record<string, ModelClass | undefined>;
const fieldCache = new Map<string, Map<string, string> | null>();

/** Field name → declared type of a client-node model; undefined when the name is not a model. */
function fieldsOf(typeName: string): Map<string, string> | undefined {
  const hit = fieldCache.get(typeName);
  if (hit !== undefined) return hit ?? undefined;
  const model = Object.prototype.hasOwnProperty.call(registry, typeName) ? registry[typeName] : undefined;
  const fields = model && typeof model.getAttributeTypeMap === 'function' ? new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type])) : null;
  fieldCache.set(typeName, fields);
  return fields ?? undefined;
}

const ARRAY = /^Array<(.+)>$/;
const MAP = /^\{ \[key: string\]: (.+); \}$/;

/**
 * The client-node model of a built-in kind (`batch/v1` `Job` → `V1Job`), or undefined for a custom resource
 * (an API group with a dot that is not a `*.k8s.io` group of Kubernetes itself).
 */
export function builtInModel(apiVersion: string, kind: string): string | undefined {
  const slash = apiVersion.indexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  if (group.includes('.') && !(group.endsWith('.k8s.io') && !group.endsWith('.x-k8s.io'))) return undefined;
  const name = `${version.charAt(0).toUpperCase()}${version.slice(1)}${kind}`;
  return fieldsOf(name) ? name : undefined;
}

function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

interface Frame {
  path: string;
  fields: Map<string, string>;
}

/** "did you mean …": the field one or more levels up (a misplaced field), else a near spelling at this level. */
function suggestion(key: string, here: Frame, ancestors: Frame[]): string | undefined {
  for (let i = ancestors.length - 1; i >= 0; i--) {
    const a = ancestors[i]!;
    if (a.fields.has(key)) return join(a.path, key);
  }
  let best: string | undefined;
  let bestD = Infinity;
  for (const name of here.fields.keys()) {
    const d = name.toLowerCase() === key.toLowerCase() ? 0 : distance(name, key);
    if (d < bestD) {
      bestD = d;
      best = name;
    }
  }
  return best !== undefined && bestD <= (key.length <= 4 ? 1 : 2) ? join(here.path, best) : undefined;
}

const SCALAR_TYPES: Record<string, string> = { string: 'string', number: 'number', boolean: 'boolean' };

/**
 * Walks `value` as the model `typeName`, pushing an issue for every field the model does not declare (with a
 * "did you mean" when the field belongs one level up or is misspelt) and every scalar of the wrong JSON type.
 */
function check(value: unknown, typeName: string, path: string, issues: ValidationIssue[], ancestors: Frame[], depth: number): void {
  if (depth > 64) return;
  const list = ARRAY.exec(typeName);
  if (list) {
    if (value === null || value === undefined) return;
    if (!Array.isArray(value)) {
      issues.push({ path, expected: 'an array', found: describeValue(value), message: `expected an array, found ${describeValue(value)}` });
      return;
    }
    value.forEach((v, i) => check(v, list[1]!, join(path, i), issues, ancestors, depth + 1));
    return;
  }
  const map = MAP.exec(typeName);
  if (map) {
    if (value === null || value === undefined) return;
    if (!isRecord(value)) {
      issues.push({ path, expected: 'a mapping', found: describeValue(value), message: `expected a mapping, found ${describeValue(value)}` });
      return;
    }
    // Map values are checked only when they are models: quantities (`cpu: 1`) may be numbers or strings.
    if (fieldsOf(map[1]!)) for (const [k, v] of Object.entries(value)) check(v, map[1]!, `${path}[${k}]`, issues, ancestors, depth + 1);
    return;
  }
  const scalar = SCALAR_TYPES[typeName];
  if (scalar) {
    if (value === null || value === undefined || typeof value === scalar) return;
    const expected = scalar === 'string' ? 'a string' : scalar === 'number' ? 'a number' : 'true or false';
    issues.push({ path, expected, found: describeValue(value), message: `expected ${expected}, found ${describeValue(value)}` });
    return;
  }
  const fields = fieldsOf(typeName);
  if (!fields || value === null || value === undefined) return;
  if (!isRecord(value)) {
    issues.push({ path, expected: 'an object', found: describeValue(value), message: `expected an object, found ${describeValue(value)}` });
    return;
  }
  const here: Frame = { path, fields };
  for (const [key, v] of Object.entries(value)) {
    const at = join(path, key);
    const type = fields.get(key);
    if (type === undefined) {
      const hint = suggestion(key, here, ancestors);
      issues.push({
        path: at,
        expected: `a field of ${typeName.replace(/^V\d\w*?(?=[A-Z])/, '')}`,
        found: `unknown field "${key}"`,
        message: `unknown field${hint ? ` (did you mean ${hint}?)` : ''}`,
      });
      continue;
    }
    check(v, type, at, issues, [...ancestors, here], depth + 1);
  }
}

/** Every pod template (an object whose `spec` holds a `containers` array) in a custom resource, with its path. */
function podTemplates(value: unknown, path: string, out: { path: string; value: Obj }[], depth = 0): typeof out {
  if (depth > 32) return out;
  if (Array.isArray(value)) {
    value.forEach((v, i) => podTemplates(v, join(path, i), out, depth + 1));
    return out;
  }
  if (!isRecord(value)) return out;
  if (isRecord(value.spec) && Array.isArray(value.spec.containers)) {
    out.push({ path, value });
    return out;
  }
  for (const [k, v] of Object.entries(value)) podTemplates(v, join(path, k), out, depth + 1);
  return out;
}

const WRAPPER_MESSAGE =
  "`kubernetes:` is W&B's queue-config wrapper: it belongs at the level of resource_args (resource_args.kubernetes holds its contents), " +
  'not inside resource_args.kubernetes, where it would run as a plain Job with the wrapped object dropped';

/**
 * The schema problems of a rendered manifest: for a built-in kind (`batch/v1` Job, Pod, Service, ConfigMap, …) the
 * whole object against its schema; for a custom resource (Volcano, Kubeflow, JobSet, …) its `metadata` and every pod
 * template in it. Unknown or misplaced fields come back with their JSON path and a "did you mean" when one fits.
 */
export function findManifestIssues(manifest: unknown): ValidationIssue[] {
  if (!isRecord(manifest)) {
    const found = describeValue(manifest);
    return [{ path: '', expected: 'an object', found, message: `expected an object, found ${found}` }];
  }
  const issues: ValidationIssue[] = [];
  const apiVersion = typeof manifest.apiVersion === 'string' ? manifest.apiVersion : 'batch/v1';
  const kind = typeof manifest.kind === 'string' ? manifest.kind : 'Job';
  const model = builtInModel(apiVersion, kind);
  if (isRecord(manifest.kubernetes)) {
    issues.push({ path: 'kubernetes', expected: 'the wrapped object one level up', found: "W&B's `kubernetes:` wrapper", message: WRAPPER_MESSAGE });
  }
  if (model) {
    const { kubernetes: _wrapper, ...rest } = manifest;
    check(isRecord(manifest.kubernetes) ? rest : manifest, model, '', issues, [], 0);
    return issues;
  }
  check(manifest.metadata, 'V1ObjectMeta', 'metadata', issues, [], 0);
  for (const t of podTemplates(manifest.spec, 'spec', [])) check(t.value, 'V1PodTemplateSpec', t.path, issues, [], 0);
  return issues;
}

/**
 * Throws a LaunchValidationError (code `run.invalid_manifest`, stage `run`, category `InvalidSpec`) listing every
 * schema problem of a rendered manifest; returns nothing when it matches its kind's schema.
 */
export function validateManifest(manifest: unknown, subject = 'the Kubernetes manifest'): void {
  const issues = findManifestIssues(manifest);
  if (issues.length > 0) throw invalidManifestError(issues, subject);
}

/** The error for a manifest's schema problems. */
export function invalidManifestError(issues: ValidationIssue[], subject = 'the Kubernetes manifest'): LaunchValidationError {
  return new LaunchValidationError({
    code: 'run.invalid_manifest',
    stage: 'run',
    category: 'InvalidSpec',
    subject,
    hint: "fix the fields named above in the queue config or the job's resource_args.kubernetes (the Kubernetes API reference lists each kind's fields)",
    issues,
  });
}
