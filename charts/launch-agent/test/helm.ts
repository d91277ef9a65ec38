import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The chart under test, the repository root, and the chart's CI values files. */
export const chartDir = fileURLToPath(new URL('..', import.meta.url));
export const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
export const ciValuesFiles = readdirSync(join(chartDir, 'ci'))
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .map((f) => join(chartDir, 'ci', f));

// The charts folder is not a workspace package: its test libraries are resolved from the packages that depend on them.
const fromCore = createRequire(join(repoRoot, 'packages/core/package.json'));
const fromTestkit = createRequire(join(repoRoot, 'packages/testkit/package.json'));
const jsYaml = fromCore('js-yaml') as { loadAll(text: string): unknown[]; load(text: string): unknown };

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: any;
}

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Helm {
  run(args: string[]): Promise<HelmResult>;
  /** `helm template <release> <chart>`; throws with helm's stderr when it fails. */
  template(opts?: TemplateOptions): Promise<KubeObject[]>;
  close(): void;
}

export interface TemplateOptions {
  release?: string;
  namespace?: string;
  valuesFiles?: string[];
  /** `--set-json key=json` pairs. */
  setJson?: Record<string, unknown>;
}

/** Installs Helm 3.17 with scripts/install-helm.sh (idempotent) and returns a runner with private Helm home dirs. */
export async function startHelm(): Promise<Helm> {
  const installed = await exec(join(repoRoot, 'scripts/install-helm.sh'), [], process.env);
  if (installed.code !== 0) throw new Error(`scripts/install-helm.sh failed (exit ${installed.code}): ${installed.stderr}`);
  const helmPath = installed.stdout.trim().split('\n').pop()!;
  const home = mkdtempSync(join(tmpdir(), 'launch-helm-home-'));
  const env = {
    ...process.env,
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_DATA_HOME: join(home, 'data'),
    KUBECONFIG: join(home, 'no-kubeconfig'),
  };
  const run = (args: string[]) => exec(helmPath, args, env);
  return {
    run,
    async template(opts = {}) {
      const args = ['template', opts.release ?? 'rel', chartDir, '--namespace', opts.namespace ?? 'release-ns'];
      for (const f of opts.valuesFiles ?? []) args.push('-f', f);
      for (const [k, v] of Object.entries(opts.setJson ?? {})) args.push('--set-json', `${k}=${JSON.stringify(v)}`);
      const r = await run(args);
      if (r.code !== 0) throw new Error(`helm ${args.join(' ')} failed (exit ${r.code}): ${r.stderr}`);
      return parseManifests(r.stdout);
    },
    close: () => rmSync(home, { recursive: true, force: true }),
  };
}

function exec(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<HelmResult> {
  return new Promise((resolve) => {
    execFile(file, args, { env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) || (error && code !== 0 ? error.message : '') });
    });
  });
}

/** Parses helm's multi-document output as YAML 1.2 (as the API server reads JSON): empty documents dropped. */
export function parseManifests(text: string): KubeObject[] {
  return jsYaml.loadAll(text).filter((d): d is KubeObject => d !== null && typeof d === 'object');
}

export function parseYaml(text: string): unknown {
  return jsYaml.load(text);
}

// The built-in kinds the chart renders, validated against Kubernetes' OpenAPI schemas by kubernetes-models.
const MODELS: Record<string, string> = {
  'v1/ConfigMap': 'kubernetes-models/v1/ConfigMap',
  'v1/Secret': 'kubernetes-models/v1/Secret',
  'v1/ServiceAccount': 'kubernetes-models/v1/ServiceAccount',
  'v1/Service': 'kubernetes-models/v1/Service',
  'apps/v1/Deployment': 'kubernetes-models/apps/v1/Deployment',
  'policy/v1/PodDisruptionBudget': 'kubernetes-models/policy/v1/PodDisruptionBudget',
  'rbac.authorization.k8s.io/v1/Role': 'kubernetes-models/rbac.authorization.k8s.io/v1/Role',
  'rbac.authorization.k8s.io/v1/RoleBinding': 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding',
};

type ModelClass = new (data: unknown) => { validate(): void };
const loaded = new Map<string, ModelClass>();

async function model(key: string): Promise<ModelClass | undefined> {
  const path = MODELS[key];
  if (!path) return undefined;
  let m = loaded.get(key);
  if (!m) {
    const mod = (await import(pathToFileURL(fromTestkit.resolve(path)).href)) as Record<string, ModelClass>;
    m = mod[key.split('/').pop()!]!;
    loaded.set(key, m);
  }
  return m;
}

const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/**
 * Problems the API server would refuse the object for: its kind's schema (kubernetes-models), names as DNS
 * subdomains, label values. A kind without a model (ServiceMonitor) gets the name and label checks only.
 */
export async function objectProblems(obj: KubeObject): Promise<string[]> {
  const where = `${obj.kind} ${obj.metadata?.namespace ?? ''}/${obj.metadata?.name}`;
  const problems: string[] = [];
  const M = await model(`${obj.apiVersion}/${obj.kind}`);
  if (M) {
    try {
      new M(obj).validate();
    } catch (error) {
      problems.push(`${where}: ${error instanceof Error ? error.message : String(error)}`);
    }
  } else if (!(obj.apiVersion === 'monitoring.coreos.com/v1' && obj.kind === 'ServiceMonitor')) {
    problems.push(`${where}: no schema for ${obj.apiVersion} ${obj.kind}`);
  }
  const name = obj.metadata?.name ?? '';
  if (name.length > 253 || !SUBDOMAIN.test(name)) problems.push(`${where}: invalid name`);
  const maps = [obj.metadata?.labels, obj.spec?.template?.metadata?.labels, obj.spec?.selector?.matchLabels];
  for (const labels of maps) {
    for (const [k, v] of Object.entries(labels ?? {})) {
      if (typeof v !== 'string' || v.length > 63 || !LABEL_VALUE.test(v)) problems.push(`${where}: label ${k}=${String(v)} is invalid`);
    }
  }
  return problems;
}

export function find(objects: KubeObject[], kind: string, name?: string, namespace?: string): KubeObject[] {
  return objects.filter(
    (o) => o.kind === kind && (name === undefined || o.metadata.name === name) && (namespace === undefined || o.metadata.namespace === namespace),
  );
}

export function one(objects: KubeObject[], kind: string, name?: string, namespace?: string): KubeObject {
  const found = find(objects, kind, name, namespace);
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}${namespace ? ` in ${namespace}` : ''}, found ${found.length}`);
  return found[0]!;
}
