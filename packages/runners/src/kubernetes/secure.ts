import { LaunchValidationError, type ValidationIssue } from '@launch/core';
import { describeValue } from '@launch/core/internal';

/** Keys refused wherever they appear in a manifest (W&B's `validate_launch_resource_args`). */
const REFUSED_KEYS: Record<string, string> = {
  securityContext: 'the agent sets a hardened securityContext itself',
  hostPath: "hostPath volumes expose the node's filesystem",
  serviceAccountToken: 'projected service-account tokens grant API access',
  serviceAccountName: 'a job may not pick its service account',
  serviceAccount: 'a job may not pick its service account',
};

/** Keys refused when truthy. */
const REFUSED_TRUTHY: Record<string, string> = {
  hostPID: "sharing the node's process namespace",
  hostIPC: "sharing the node's IPC namespace",
  hostNetwork: "sharing the node's network",
  shareProcessNamespace: 'sharing a process namespace between containers',
  hostUsers: "running in the node's user namespace",
  automountServiceAccountToken: 'mounting a service-account token grants API access',
  hostPort: 'binding a port on the node',
};

/** Pod-spec keys refused in secure mode whatever their value. */
const SECURE_MODE_POD_KEYS = ['hostPID', 'hostIPC', 'hostNetwork', 'initContainers'];

const UNCONFINED_ANNOTATION = /(?:apparmor|seccomp)/i;

export interface ValidateKubernetesResourceArgsOptions {
  /** W&B's `secure_mode`: also refuse host namespaces and init containers in pod specs and any container `command`. */
  secureMode?: boolean;
  /** Subject named in the error, e.g. `resource_args.kubernetes` or `additional_services[0].config`. */
  subject?: string;
}

function issue(path: string, expected: string, found: string, message: string): ValidationIssue {
  return { path, expected, found, message };
}

function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks Kubernetes resource args (or an additional-service manifest) for fields that would let a job escape
 * its sandbox, plus the shapes the runner relies on. Throws a LaunchValidationError listing every refused or
 * malformed field by its path (stage `run`); returns nothing when the args are acceptable.
 */
export function validateKubernetesResourceArgs(args: unknown, options: ValidateKubernetesResourceArgsOptions = {}): void {
  const issues = findKubernetesIssues(args, options);
  if (issues.length > 0) throw refusedArgsError(issues, options);
}

/** The error listing every refused or malformed field (code `run.refused_resource_args`, stage `run`). */
export function refusedArgsError(issues: ValidationIssue[], options: ValidateKubernetesResourceArgsOptions = {}): LaunchValidationError {
  return new LaunchValidationError({
    code: 'run.refused_resource_args',
    stage: 'run',
    category: 'InvalidSpec',
    subject: options.subject ?? 'resource_args.kubernetes',
    hint: options.secureMode
      ? 'remove the fields named above from the queue config or the job; the agent runs in secure_mode'
      : 'remove the fields named above from the queue config or the job',
    issues,
  });
}

/** The issues `validateKubernetesResourceArgs` would throw, as a list. */
export function findKubernetesIssues(args: unknown, options: ValidateKubernetesResourceArgsOptions = {}): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  if (!isRecord(args)) {
    const found = describeValue(args);
    return [issue('', 'an object', found, `expected an object, found ${found}`)];
  }
  walk(args, '', issues, options.secureMode ?? false, 0);
  checkShapes(args, issues);
  return issues;
}

function walk(value: unknown, path: string, issues: ValidationIssue[], secure: boolean, depth: number): void {
  if (depth > 64) {
    issues.push(issue(path, 'at most 64 levels of nesting', 'deeper nesting', 'nested too deeply (more than 64 levels)'));
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => walk(v, join(path, i), issues, secure, depth + 1));
    return;
  }
  if (!isRecord(value)) return;
  for (const [key, v] of Object.entries(value)) {
    const p = join(path, key);
    if (key in REFUSED_KEYS) {
      issues.push(issue(p, 'no such field', describeValue(v), `"${key}" is not allowed: ${REFUSED_KEYS[key]}`));
      continue;
    }
    if (key in REFUSED_TRUTHY && v) {
      issues.push(issue(p, 'false or absent', describeValue(v), `"${key}: ${String(v)}" is not allowed: ${REFUSED_TRUTHY[key]}`));
      continue;
    }
    if (key === 'mountPropagation' && v === 'Bidirectional') {
      issues.push(issue(p, 'None or HostToContainer', '"Bidirectional"', 'mountPropagation Bidirectional is not allowed: it propagates mounts to the node'));
      continue;
    }
    if (key === 'annotations' && isRecord(v)) {
      for (const [name, val] of Object.entries(v)) {
        if (UNCONFINED_ANNOTATION.test(name) && typeof val === 'string' && val.toLowerCase().includes('unconfined')) {
          issues.push(
            issue(join(p, name), 'a confined profile', JSON.stringify(val), `annotation "${name}: ${val}" is not allowed: AppArmor/seccomp must stay confined`),
          );
        }
      }
    }
    // A pod spec without `containers` gets one from the runner (a plain Job's template): its init containers count too.
    if (secure && (isPodSpec(value) || 'initContainers' in value)) {
      if (SECURE_MODE_POD_KEYS.includes(key)) {
        issues.push(issue(p, 'no such field (secure_mode)', describeValue(v), `"${key}" is not allowed in secure_mode`));
        continue;
      }
      if (key === 'containers' && Array.isArray(v)) {
        v.forEach((c, i) => {
          if (isRecord(c) && c.command !== undefined) {
            const cp = join(join(p, i), 'command');
            issues.push(issue(cp, 'no command (secure_mode)', describeValue(c.command), 'a container command is not allowed in secure_mode'));
          }
        });
      }
    }
    walk(v, p, issues, secure, depth + 1);
  }
}

/** A pod spec is an object holding a `containers` array. */
export function isPodSpec(value: Record<string, unknown>): boolean {
  return Array.isArray(value.containers);
}

function checkShapes(args: Record<string, unknown>, issues: ValidationIssue[]): void {
  const expectType = (path: string, v: unknown, kind: 'object' | 'string' | 'array') => {
    if (v === undefined) return true;
    const ok = kind === 'object' ? isRecord(v) : kind === 'array' ? Array.isArray(v) : typeof v === 'string';
    if (!ok) {
      const expected = kind === 'object' ? 'an object' : kind === 'array' ? 'an array' : 'a string';
      issues.push(issue(path, expected, describeValue(v), `expected ${expected}, found ${describeValue(v)}`));
    }
    return ok;
  };
  expectType('apiVersion', args.apiVersion, 'string');
  expectType('kind', args.kind, 'string');
  expectType('namespace', args.namespace, 'string');
  expectType('configFile', args.configFile, 'string');
  expectType('context', args.context, 'string');
  if (expectType('metadata', args.metadata, 'object') && isRecord(args.metadata)) {
    const m = args.metadata;
    expectType('metadata.name', m.name, 'string');
    expectType('metadata.namespace', m.namespace, 'string');
    for (const key of ['labels', 'annotations'] as const) {
      if (expectType(`metadata.${key}`, m[key], 'object') && isRecord(m[key])) {
        for (const [k, v] of Object.entries(m[key])) expectType(`metadata.${key}.${k}`, v, 'string');
      }
    }
  }
  if (expectType('spec', args.spec, 'object') && isRecord(args.spec)) {
    const tmpl = args.spec.template;
    if (expectType('spec.template', tmpl, 'object') && isRecord(tmpl)) {
      expectType('spec.template.metadata', tmpl.metadata, 'object');
      if (expectType('spec.template.spec', tmpl.spec, 'object') && isRecord(tmpl.spec)) {
        const containers = tmpl.spec.containers;
        if (expectType('spec.template.spec.containers', containers, 'array') && Array.isArray(containers)) {
          containers.forEach((c, i) => {
            const p = `spec.template.spec.containers[${i}]`;
            if (!expectType(p, c, 'object') || !isRecord(c)) return;
            expectType(`${p}.name`, c.name, 'string');
            expectType(`${p}.image`, c.image, 'string');
            expectType(`${p}.env`, c.env, 'array');
            expectType(`${p}.command`, c.command, 'array');
            expectType(`${p}.args`, c.args, 'array');
          });
        }
      }
    }
  }
}
