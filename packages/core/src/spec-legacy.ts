import type { ValidationIssue } from './errors.js';
import { describeValue } from './validation.js';

/**
 * W&B's legacy flat `resource_args.kubernetes` keys (its runner before 2023 read them one by one and
 * built the Job itself). Today's W&B agent takes `resource_args.kubernetes` as the Job manifest, so a
 * flat key lands at the top of the Job and the API server drops it. Each key is either moved to where
 * a Job keeps it (`normalizeLaunchSpec`, with a warning) or refused with the modern form shown.
 */

type Kind = 'list' | 'mapping' | 'scalar' | 'any';

interface Move {
  /** Where the value goes in a batch/v1 Job; `*` means every container. */
  to: string[];
  kind: Kind;
}

const POD = ['spec', 'template', 'spec'];
const CONTAINERS = [...POD, 'containers', '*'];

export const LEGACY_K8S_MOVES: Record<string, Move> = {
  job_name: { to: ['metadata', 'name'], kind: 'scalar' },
  job_labels: { to: ['metadata', 'labels'], kind: 'mapping' },
  backoff_limit: { to: ['spec', 'backoffLimit'], kind: 'scalar' },
  completions: { to: ['spec', 'completions'], kind: 'scalar' },
  parallelism: { to: ['spec', 'parallelism'], kind: 'scalar' },
  suspend: { to: ['spec', 'suspend'], kind: 'scalar' },
  restart_policy: { to: [...POD, 'restartPolicy'], kind: 'scalar' },
  preemption_policy: { to: [...POD, 'preemptionPolicy'], kind: 'scalar' },
  node_name: { to: [...POD, 'nodeName'], kind: 'scalar' },
  node_selector: { to: [...POD, 'nodeSelector'], kind: 'mapping' },
  tolerations: { to: [...POD, 'tolerations'], kind: 'list' },
  volumes: { to: [...POD, 'volumes'], kind: 'list' },
  container_name: { to: [...POD, 'containers', '0', 'name'], kind: 'scalar' },
  resource_requests: { to: [...CONTAINERS, 'resources', 'requests'], kind: 'mapping' },
  resource_limits: { to: [...CONTAINERS, 'resources', 'limits'], kind: 'mapping' },
  volume_mounts: { to: [...CONTAINERS, 'volumeMounts'], kind: 'list' },
  // A list of {name, value}, or a mapping of names to values (converted to that list).
  env: { to: [...CONTAINERS, 'env'], kind: 'any' },
};

/** Legacy keys that cannot be moved: each with what to write instead. */
export const LEGACY_K8S_REFUSED: Record<string, string> = {
  job_spec: "W&B's old runner read a Job file named by job_spec; write the Job manifest itself as resource_args.kubernetes (apiVersion, kind, metadata, spec)",
  registry: 'the registry comes from the agent config: set builder.destination there',
  security_context: 'the agent forces a restricted securityContext on every container and refuses securityContext in resource_args (as W&B does)',
};

const own = <T>(table: Record<string, T>, key: string): T | undefined => (Object.hasOwn(table, key) ? table[key] : undefined);

const pathText = (to: string[]) =>
  to
    .map((p) => (p === '*' ? '[*]' : /^\d+$/.test(p) ? `[${p}]` : `.${p}`))
    .join('')
    .replace(/^\./, '');

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function kubernetesArgs(raw: Record<string, unknown>): Record<string, unknown> | undefined {
  const args = raw['resource_args'];
  if (!isPlainObject(args)) return undefined;
  const k8s = args['kubernetes'];
  return isPlainObject(k8s) ? k8s : undefined;
}

/** Whether the manifest is a batch/v1 Job (W&B's default when apiVersion is absent). */
function isJob(k8s: Record<string, unknown>): boolean {
  const apiVersion = k8s['apiVersion'];
  const kind = k8s['kind'];
  return (apiVersion === undefined || apiVersion === 'batch/v1') && (kind === undefined || kind === 'Job');
}

function kindOk(kind: Kind, value: unknown): boolean {
  if (kind === 'list') return Array.isArray(value);
  if (kind === 'mapping') return isPlainObject(value);
  if (kind === 'scalar') return value !== null && typeof value !== 'object';
  return Array.isArray(value) || isPlainObject(value);
}

const KIND_TEXT: Record<Kind, string> = {
  list: 'a list',
  mapping: 'a mapping',
  scalar: 'a single value',
  any: 'a list of {name, value} or a mapping of names to values',
};

/** Where a legacy key's value already exists in the manifest, if it does (a conflict). */
function existing(k8s: Record<string, unknown>, to: string[]): string | undefined {
  const walk = (node: unknown, rest: string[], done: string[]): string | undefined => {
    if (rest.length === 0) return node === undefined ? undefined : pathText(done);
    const [head, ...tail] = rest as [string, ...string[]];
    if (head === '*') {
      if (!Array.isArray(node)) return undefined;
      for (let i = 0; i < node.length; i++) {
        const hit = walk(node[i], tail, [...done, String(i)]);
        if (hit) return hit;
      }
      return undefined;
    }
    if (/^\d+$/.test(head)) return Array.isArray(node) ? walk(node[Number(head)], tail, [...done, head]) : undefined;
    return isPlainObject(node) ? walk(node[head], tail, [...done, head]) : undefined;
  };
  return walk(k8s, to, []);
}

/** Refusals for legacy keys that `normalizeLaunchSpec` cannot convert, or that `parseLaunchSpec` sees unconverted. */
export function legacyResourceArgIssues(raw: Record<string, unknown>): ValidationIssue[] {
  const k8s = kubernetesArgs(raw);
  if (!k8s) return [];
  const out: ValidationIssue[] = [];
  const job = isJob(k8s);
  for (const [key, value] of Object.entries(k8s)) {
    const path = `resource_args.kubernetes.${key}`;
    const refused = own(LEGACY_K8S_REFUSED, key);
    if (refused) {
      out.push({
        path,
        expected: 'a key of a Kubernetes manifest',
        found: `W&B's legacy key "${key}"`,
        message: `W&B's legacy flat key "${key}" is not supported: ${refused}`,
      });
      continue;
    }
    const move = own(LEGACY_K8S_MOVES, key);
    if (!move) continue;
    const modern = pathText(move.to);
    const found = `W&B's legacy flat key "${key}"`;
    if (!job) {
      out.push({
        path,
        expected: 'a key of the manifest',
        found,
        message: `W&B's legacy flat key "${key}" only applied to plain Jobs; this manifest is a ${String(k8s['kind'] ?? '?')}: put it in its pod template`,
      });
    } else if (!kindOk(move.kind, value)) {
      out.push({
        path,
        expected: KIND_TEXT[move.kind],
        found: describeValue(value),
        message: `W&B's legacy flat key "${key}" expects ${KIND_TEXT[move.kind]}, found ${describeValue(value)}; the modern form is ${modern}`,
      });
    } else if (existing(k8s, move.to)) {
      out.push({
        path,
        expected: 'one place for the value',
        found,
        message: `W&B's legacy flat key "${key}" and ${existing(k8s, move.to)} are both set: keep only ${modern}`,
      });
    } else {
      out.push({
        path,
        expected: modern,
        found,
        message: `W&B's legacy flat key "${key}": write it as ${modern} (normalizeLaunchSpec converts it with a warning)`,
      });
    }
  }
  return out;
}

function setAt(node: Record<string, unknown>, to: string[], value: unknown): void {
  const [head, ...tail] = to as [string, ...string[]];
  if (head === '*' || /^\d+$/.test(head)) throw new Error('bug: setAt on a list step');
  if (tail.length === 0) {
    node[head] = value;
    return;
  }
  const next = tail[0]!;
  if (next === 'containers') {
    // `containers` is always followed by `*` or an index.
    const pod = (isPlainObject(node[head]) ? node[head] : (node[head] = {})) as Record<string, unknown>;
    const containers = (Array.isArray(pod['containers']) && pod['containers'].length > 0 ? pod['containers'] : (pod['containers'] = [{}])) as unknown[];
    const selector = tail[1]!;
    const rest = tail.slice(2);
    const targets = selector === '*' ? containers.map((_, i) => i) : [Number(selector)];
    for (const i of targets) {
      if (!isPlainObject(containers[i])) containers[i] = {};
      setAt(containers[i] as Record<string, unknown>, rest, structuredClone(value));
    }
    return;
  }
  const child = (isPlainObject(node[head]) ? node[head] : (node[head] = {})) as Record<string, unknown>;
  setAt(child, tail, value);
}

function envList(value: unknown): unknown {
  if (!isPlainObject(value)) return value;
  return Object.entries(value).map(([name, v]) => ({ name, value: typeof v === 'string' ? v : String(v) }));
}

/**
 * Returns a copy of the spec with every convertible legacy key moved (and a warning for each);
 * keys that cannot be converted are left for `parseLaunchSpec` to refuse.
 */
export function convertLegacyResourceArgs(raw: Record<string, unknown>, warnings: { path: string; message: string }[]): Record<string, unknown> {
  const k8s = kubernetesArgs(raw);
  if (!k8s || !isJob(k8s)) return raw;
  const legacy = Object.keys(k8s).filter((key) => {
    const move = own(LEGACY_K8S_MOVES, key);
    return move !== undefined && kindOk(move.kind, k8s[key]) && existing(k8s, move.to) === undefined;
  });
  if (legacy.length === 0) return raw;
  const copy = structuredClone(raw);
  const target = (copy['resource_args'] as Record<string, Record<string, unknown>>)['kubernetes']!;
  for (const key of legacy) {
    const move = LEGACY_K8S_MOVES[key]!;
    const value = key === 'env' ? envList(target[key]) : target[key];
    delete target[key];
    setAt(target, move.to, value);
    warnings.push({
      path: `resource_args.kubernetes.${key}`,
      message: `converted W&B's legacy flat key "${key}" to ${pathText(move.to)}; write that form in the queue config or spec`,
    });
  }
  return copy;
}
