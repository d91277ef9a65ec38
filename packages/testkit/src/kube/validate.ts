import type { ResourceInfo } from './resources.js';
import { ApiError, badRequest, invalid, type StatusCause } from './status.js';
import type { Json, KubeObject } from './types.js';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const LABEL_VALUE_MSG =
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const LABEL_NAME_MSG =
  "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

function invalidValue(field: string, value: unknown, detail: string): StatusCause {
  return { reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(value)}: ${detail}`, field };
}

function required(field: string, detail?: string): StatusCause {
  return { reason: 'FieldValueRequired', message: detail ? `Required value: ${detail}` : 'Required value', field };
}

/** Checks a name against the rule its resource uses (DNS-1123 label or subdomain). */
export function nameCauses(name: string, rule: 'subdomain' | 'label', field = 'metadata.name'): StatusCause[] {
  if (rule === 'label') {
    if (name.length > 63) return [invalidValue(field, name, 'must be no more than 63 characters')];
    if (!DNS1123_LABEL.test(name)) return [invalidValue(field, name, LABEL_MSG)];
  } else {
    if (name.length > 253) return [invalidValue(field, name, 'must be no more than 253 characters')];
    if (!DNS1123_SUBDOMAIN.test(name)) return [invalidValue(field, name, SUBDOMAIN_MSG)];
  }
  return [];
}

/** `IsQualifiedName`: an optional DNS-1123 subdomain prefix and a name part (label keys, annotation keys). */
function qualifiedNameCauses(key: string, field: string): StatusCause[] {
  const causes: StatusCause[] = [];
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))) {
    causes.push(invalidValue(field, key, `prefix part ${SUBDOMAIN_MSG}`));
  }
  if (name.length > 63) causes.push(invalidValue(field, key, 'name part must be no more than 63 characters'));
  else if (!LABEL_NAME.test(name)) causes.push(invalidValue(field, key, LABEL_NAME_MSG));
  return causes;
}

export function labelCauses(labels: Record<string, string> | undefined, field: string): StatusCause[] {
  const causes: StatusCause[] = [];
  for (const [key, value] of Object.entries(labels ?? {})) {
    causes.push(...qualifiedNameCauses(key, field));
    if (typeof value !== 'string') continue;
    if (value.length > 63) causes.push(invalidValue(field, value, 'must be no more than 63 characters'));
    else if (!LABEL_VALUE.test(value)) causes.push(invalidValue(field, value, LABEL_VALUE_MSG));
  }
  return causes;
}

/** `TotalAnnotationSizeLimitB`: keys plus values, in bytes. */
export const TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024;

/** ValidateAnnotations: qualified-name keys (case-insensitive) and at most 256 KiB of keys plus values. */
export function annotationCauses(annotations: Record<string, string> | undefined, field = 'metadata.annotations'): StatusCause[] {
  const causes: StatusCause[] = [];
  let size = 0;
  for (const [key, value] of Object.entries(annotations ?? {})) {
    causes.push(
      ...qualifiedNameCauses(key.toLowerCase(), field).map((c) => ({
        ...c,
        message: c.message.replace(JSON.stringify(key.toLowerCase()), JSON.stringify(key)),
      })),
    );
    size += Buffer.byteLength(key) + Buffer.byteLength(String(value ?? ''));
  }
  if (size > TOTAL_ANNOTATION_SIZE_LIMIT) {
    causes.push({ reason: 'FieldValueTooLong', message: `Too long: must have at most ${TOTAL_ANNOTATION_SIZE_LIMIT} bytes`, field });
  }
  return causes;
}

const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;
const CONFIG_KEY_MSG =
  "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
/** `MaxSecretSize`: the sum of the decoded data values. */
const MAX_SECRET_SIZE = 1024 * 1024;

/** Go's `json.Unmarshal(data, &map[string]interface{}{})` error for text that is not a JSON object, or undefined. */
function goJsonObjectError(text: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    const trimmed = text.trim();
    if (trimmed === '') return 'unexpected end of JSON input';
    // Find where a JSON scanner would stop: first character that cannot start a value, or the text ran out.
    const first = trimmed[0]!;
    if (!'{["-0123456789tfn'.includes(first)) return `invalid character '${first}' looking for beginning of value`;
    return 'unexpected end of JSON input';
  }
  if (parsed === null || (typeof parsed === 'object' && !Array.isArray(parsed))) return undefined;
  const kind = Array.isArray(parsed) ? 'array' : typeof parsed === 'boolean' ? 'bool' : typeof parsed;
  return `json: cannot unmarshal ${kind} into Go value of type map[string]interface {}`;
}

/**
 * ValidateSecret (Kubernetes 1.31, pkg/apis/core/validation): data keys, total size, and the keys each built-in
 * secret type requires. `data` holds base64 values (stringData already folded in). Contents never reach a message.
 */
export function secretCauses(secret: KubeObject): StatusCause[] {
  const causes: StatusCause[] = [];
  const data = (secret.data ?? {}) as Record<string, string>;
  const key = (k: string) => `data[${k}]`;
  let total = 0;
  for (const [k, v] of Object.entries(data)) {
    if (k.length > 253) causes.push(invalidValue(key(k), k, 'must be no more than 253 characters'));
    else if (!CONFIG_KEY.test(k)) causes.push(invalidValue(key(k), k, CONFIG_KEY_MSG));
    else if (k === '.' || k === '..') causes.push(invalidValue(key(k), k, `must not be '${k}'`));
    else if (k.startsWith('..')) causes.push(invalidValue(key(k), k, "must not start with '..'"));
    total += Buffer.from(String(v ?? ''), 'base64').length;
  }
  if (total > MAX_SECRET_SIZE) causes.push({ reason: 'FieldValueTooLong', message: `Too long: must have at most ${MAX_SECRET_SIZE} bytes`, field: 'data' });
  const decoded = (k: string) => Buffer.from(String(data[k] ?? ''), 'base64').toString('utf8');
  const jsonKey = (k: string) => {
    if (!(k in data)) return causes.push(required(key(k)));
    const error = goJsonObjectError(decoded(k));
    if (error) causes.push({ reason: 'FieldValueInvalid', message: `Invalid value: "<secret contents redacted>": ${error}`, field: key(k) });
    return undefined;
  };
  switch (secret.type) {
    case 'kubernetes.io/service-account-token':
      if (!secret.metadata.annotations?.['kubernetes.io/service-account.name']) {
        causes.push(required('metadata.annotations[kubernetes.io/service-account.name]'));
      }
      break;
    case 'kubernetes.io/dockercfg':
      jsonKey('.dockercfg');
      break;
    case 'kubernetes.io/dockerconfigjson':
      jsonKey('.dockerconfigjson');
      break;
    case 'kubernetes.io/basic-auth':
      // Either may be empty, but one of the two keys must be there.
      if (!('username' in data) && !('password' in data)) causes.push(required(key('username')), required(key('password')));
      break;
    case 'kubernetes.io/ssh-auth':
      if (!data['ssh-privatekey']) causes.push(required(key('ssh-privatekey')));
      break;
    case 'kubernetes.io/tls':
      if (!('tls.crt' in data)) causes.push(required(key('tls.crt')));
      if (!('tls.key' in data)) causes.push(required(key('tls.key')));
      break;
    default:
      break;
  }
  return causes;
}

/** Update-only rules: ValidateObjectMetaUpdate's finalizer rule and ValidateSecretUpdate. */
export function updateCauses(r: ResourceInfo, existing: KubeObject, next: KubeObject): StatusCause[] {
  const causes: StatusCause[] = [];
  if (existing.metadata.deletionTimestamp) {
    const old = new Set(existing.metadata.finalizers ?? []);
    const added = [...new Set(next.metadata.finalizers ?? [])].filter((f) => !old.has(f)).sort();
    if (added.length) {
      causes.push({
        reason: 'FieldValueForbidden',
        message: `Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{${added.map((f) => JSON.stringify(f)).join(', ')}}`,
        field: 'metadata.finalizers',
      });
    }
  }
  if (!r.custom && r.group === '' && r.plural === 'secrets') {
    if ((next.type ?? 'Opaque') !== (existing.type ?? 'Opaque')) {
      causes.push(invalidValue('type', next.type, 'field is immutable'));
    }
    if (existing.immutable === true) {
      if (JSON.stringify(next.data ?? {}) !== JSON.stringify(existing.data ?? {})) {
        causes.push({ reason: 'FieldValueForbidden', message: 'Forbidden: field is immutable when `immutable` is set', field: 'data' });
      }
      if (next.immutable !== true)
        causes.push({ reason: 'FieldValueForbidden', message: 'Forbidden: field is immutable when `immutable` is set', field: 'immutable' });
    }
  }
  return causes;
}

/** Semantic checks of a pod spec that the JSON schema cannot express (the apiserver's ValidatePodSpec, in part). */
function podSpecCauses(spec: Json, field: string, restartPolicies?: string[]): StatusCause[] {
  if (!spec || typeof spec !== 'object') return [required(field)];
  const causes: StatusCause[] = [];
  const containers = spec.containers;
  if (!Array.isArray(containers) || containers.length === 0) causes.push(required(`${field}.containers`));
  const seen = new Set<string>();
  const check = (list: Json, kind: string) => {
    if (!Array.isArray(list)) return;
    list.forEach((c: Json, i: number) => {
      const at = `${field}.${kind}[${i}]`;
      if (!c?.name) causes.push(required(`${at}.name`));
      else {
        causes.push(...nameCauses(String(c.name), 'label', `${at}.name`));
        if (seen.has(c.name)) causes.push({ reason: 'FieldValueDuplicate', message: `Duplicate value: "${c.name}"`, field: `${at}.name` });
        seen.add(c.name);
      }
      if (!c?.image) causes.push(required(`${at}.image`));
      if (Array.isArray(c?.env)) {
        c.env.forEach((e: Json, j: number) => {
          if (!e?.name) causes.push(required(`${at}.env[${j}].name`));
          else if (!ENV_NAME.test(e.name)) {
            causes.push(
              invalidValue(
                `${at}.env[${j}].name`,
                e.name,
                "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')",
              ),
            );
          }
        });
      }
    });
  };
  check(spec.initContainers, 'initContainers');
  check(containers, 'containers');
  const policy = spec.restartPolicy;
  if (restartPolicies) {
    if (policy === undefined) causes.push(required(`${field}.restartPolicy`, `valid values: ${restartPolicies.map((p) => `"${p}"`).join(', ')}`));
    else if (!restartPolicies.includes(policy)) {
      causes.push({
        reason: 'FieldValueNotSupported',
        message: `Unsupported value: "${policy}": supported values: ${restartPolicies.map((p) => `"${p}"`).join(', ')}`,
        field: `${field}.restartPolicy`,
      });
    }
  }
  return causes;
}

interface AjvError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

function fieldOf(instancePath: string): string {
  return instancePath
    .split('/')
    .filter((p) => p !== '')
    .reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '');
}

/** Turns a kubernetes-models (ajv) failure into what the apiserver says: type errors are 400 decode errors, the rest 422. */
function schemaFailure(r: ResourceInfo, name: string, error: unknown): ApiError {
  const errors = ((error as { errors?: AjvError[] }).errors ?? []) as AjvError[];
  const typeError = errors.find((e) => e.keyword === 'type');
  if (typeError) {
    const field = fieldOf(typeError.instancePath);
    return badRequest(
      `${r.kind} in version "${r.version}" cannot be handled as a ${r.kind}: json: cannot unmarshal into Go struct field ${field} of type ${String(typeError.params.type)}`,
    );
  }
  const causes: StatusCause[] = errors.map((e) => {
    const base = fieldOf(e.instancePath);
    if (e.keyword === 'required') return required(base ? `${base}.${String(e.params.missingProperty)}` : String(e.params.missingProperty));
    if (e.keyword === 'enum') {
      return {
        reason: 'FieldValueNotSupported',
        message: `Unsupported value: supported values: ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`,
        field: base,
      };
    }
    return { reason: 'FieldValueInvalid', message: `Invalid value: ${e.message ?? 'invalid'}`, field: base };
  });
  if (causes.length === 0) causes.push({ reason: 'FieldValueInvalid', message: String((error as Error).message), field: '' });
  return invalid(r, name, causes);
}

/**
 * Validates an object as the apiserver would on create/update: schema (kubernetes-models for built-in kinds),
 * name and label syntax, and the pod-spec rules that matter to job runners. Throws an ApiError (422 or 400).
 */
export function validateObject(r: ResourceInfo, obj: KubeObject, schema: boolean, updateRules: StatusCause[] = []): void {
  const name = obj.metadata.name ?? '';
  if (schema && r.validate) {
    try {
      r.validate(obj);
    } catch (error) {
      if (error instanceof ApiError) throw error;
      throw schemaFailure(r, name, error);
    }
  }
  const causes: StatusCause[] = [...updateRules];
  causes.push(...nameCauses(name, r.nameRule));
  causes.push(...labelCauses(obj.metadata.labels, 'metadata.labels'));
  causes.push(...annotationCauses(obj.metadata.annotations));
  if (!r.custom && r.group === '' && r.plural === 'secrets') causes.push(...secretCauses(obj));
  if (!r.custom && r.group === '' && r.plural === 'pods') causes.push(...podSpecCauses(obj.spec, 'spec'));
  if (!r.custom && r.group === 'batch' && r.plural === 'jobs') {
    const template = obj.spec?.template;
    causes.push(...labelCauses(template?.metadata?.labels, 'spec.template.metadata.labels'));
    causes.push(...podSpecCauses(template?.spec, 'spec.template.spec', ['OnFailure', 'Never']));
  }
  if (!r.custom && r.group === 'apps' && r.plural === 'deployments') {
    const template = obj.spec?.template;
    causes.push(
      ...podSpecCauses(template?.spec, 'spec.template.spec', ['Always']).filter(
        (c) => !c.field?.endsWith('restartPolicy') || template?.spec?.restartPolicy !== undefined,
      ),
    );
    const selector = obj.spec?.selector?.matchLabels as Record<string, string> | undefined;
    const labels = (template?.metadata?.labels ?? {}) as Record<string, string>;
    if (selector && !Object.entries(selector).every(([k, v]) => labels[k] === v)) {
      causes.push(invalidValue('spec.template.metadata.labels', labels, '`selector` does not match template `labels`'));
    }
  }
  if (causes.length > 0) throw invalid(r, name, causes);
}
