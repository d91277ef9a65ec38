import { createHash } from 'node:crypto';
import { LaunchError, type RunRequest } from '@launch/core';
import { addCodeMount, CODE_ANNOTATION, type CodeEnvVar } from './code-mount.js';
import { ANNOTATION, CREATED_BY, dnsSafe, LABEL, labelValue } from './labels.js';
import { isPodSpec } from './secure.js';

type Obj = Record<string, unknown>;
const isRecord = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Resource-arg keys that configure the runner and never reach the manifest. */
const RUNNER_KEYS = ['configFile', 'context', 'namespace', 'wait_for_ready', 'wait_timeout', 'builder'];

/** The securityContext forced on every container (W&B's hardening). */
export const FORCED_SECURITY_CONTEXT = Object.freeze({
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
});

/** Key of the API key in the `wandb-api-key-*` secret (a `kubernetes.io/basic-auth` secret). */
export const API_KEY_SECRET_KEY = 'password';

/** Largest launch spec kept in the `launch.dev/spec` annotation (annotations are limited to 256 KiB in total). */
const MAX_SPEC_ANNOTATION = 64 * 1024;

export interface BuildManifestInput {
  request: RunRequest;
  agentName: string;
  namespace: string;
  /** Name of the secret holding `WANDB_API_KEY`, when the run gets a key. */
  apiKeySecret?: string;
  /** Name of a `kubernetes.io/dockerconfigjson` secret for the image registry. */
  pullSecret?: string;
  /** Secrets made for this run alone, deleted when it ends (kept in an annotation for adoption). */
  ownedSecrets?: string[];
  /** Auxiliary objects made for this run (`additional_services`), deleted when it ends. */
  services?: { apiVersion: string; kind: string; namespace: string; name: string }[];
  /**
   * Where the run's code is on the code PVC, for a request with `code`: the pod mounts `subPath` of the claim at
   * `request.code.mountPath` (in the first container of each pod template) and works in `request.workingDir`.
   */
  code?: { claimName: string; subPath: string };
  /**
   * The emptyDir mode, for a request with `code` whose `source` is a W&B job and no `code` (PVC) here: an `emptyDir`
   * at `request.code.mountPath`, filled by the init container `wandb-source-code-init` (this image, running
   * `launch-agent fetch-code`), which gets the run's `WANDB_API_KEY` (the same secret reference), `WANDB_BASE_URL`
   * and `env`.
   */
  codeInit?: { image: string; env?: Record<string, string> };
}

/**
 * Namespace in W&B's order: `metadata.namespace`, `namespace` in the resource args, the runner's configured
 * namespace, the kube context's namespace, then `default`.
 */
export function resolveNamespace(resourceArgs: Obj, runnerNamespace?: string, contextNamespace?: string): string {
  const meta = isRecord(resourceArgs.metadata) ? resourceArgs.metadata : {};
  const pick = [meta.namespace, resourceArgs.namespace, runnerNamespace, contextNamespace].find((v): v is string => typeof v === 'string' && v.length > 0);
  return pick ?? 'default';
}

/** `group`, `version` and `plural` of a kind (W&B: `plural = kind.lower() + "s"`). */
export interface KindRef {
  apiVersion: string;
  kind: string;
  group: string;
  version: string;
  plural: string;
}

export function kindRef(apiVersion: string, kind: string): KindRef {
  const slash = apiVersion.indexOf('/');
  const group = slash < 0 ? '' : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  return { apiVersion, kind, group, version, plural: `${kind.toLowerCase()}s` };
}

export const JOB_KIND = kindRef('batch/v1', 'Job');
export const VOLCANO_KIND = kindRef('batch.volcano.sh/v1alpha1', 'Job');

/** Plain Jobs take W&B's Job path; any other apiVersion is a custom resource. */
export function isPlainJob(apiVersion: string): boolean {
  return apiVersion === 'batch/v1' || apiVersion === 'batch/v1beta1';
}

/** The kind the resource args describe (default a `batch/v1` Job). */
export function manifestKind(resourceArgs: Obj): KindRef {
  const apiVersion = typeof resourceArgs.apiVersion === 'string' ? resourceArgs.apiVersion : 'batch/v1';
  const kind = typeof resourceArgs.kind === 'string' ? resourceArgs.kind : 'Job';
  // batch/v1beta1 Jobs never existed server-side for long; W&B treats them as Jobs, so do we.
  return isPlainJob(apiVersion) ? JOB_KIND : kindRef(apiVersion, kind);
}

/**
 * The finalizer on every run object: the agent removes it once the run's end is recorded at the queue, so a run
 * that ends while no agent watches (an agent down past the Job's TTL) keeps its outcome for the next agent.
 */
export const FINALIZER = 'launch.dev/outcome';

/**
 * The run object's name, derived from the queue item: W&B's `launch-<entity>-<project>-` prefix (or the manifest's
 * own `metadata.generateName`) with a suffix
 * hashed from the item id instead of a random one, so a second create for the same item is refused by the API
 * server (409) rather than making a second Job. At most 63 characters (the pods' `job-name` label).
 */
export function objectName(request: Pick<RunRequest, 'itemId' | 'spec'>, generateName?: string): string {
  const entity = request.spec.entity ?? '';
  const project = request.spec.project ?? '';
  const wanted = generateName ?? ['launch', entity, project].filter(Boolean).join('-');
  const prefix = dnsSafe(wanted, 52) || 'launch';
  const suffix = createHash('sha256').update(request.itemId).digest('hex').slice(0, 10);
  return `${prefix}-${suffix}`;
}

/** Labels every object of one run carries. */
export function runLabels(request: RunRequest, agentName: string): Record<string, string> {
  return {
    [LABEL.runId]: labelValue(request.runId),
    [LABEL.monitor]: 'true',
    [LABEL.agent]: labelValue(agentName),
    [LABEL.itemId]: labelValue(request.itemId),
  };
}

function specAnnotation(spec: RunRequest['spec']): string | undefined {
  // The API key is a secret: it lives in the per-run secret only, never in an annotation.
  const { _wandb_api_key: _key, ...rest } = spec as Obj;
  const text = JSON.stringify(rest);
  return text.length <= MAX_SPEC_ANNOTATION ? text : undefined;
}

/**
 * Builds the object the runner creates for one run from the queue's resource args (macros already filled):
 * a `batch/v1` Job with W&B's defaults, or, for any other apiVersion, the custom resource with labels, env,
 * command overrides and hardening applied to every pod template in it.
 */
export function buildJobManifest(input: BuildManifestInput): Obj {
  const { request, agentName, namespace } = input;
  const args = structuredClone(request.resourceArgs) as Obj;
  for (const key of RUNNER_KEYS) delete args[key];
  const kind = manifestKind(args);
  const plain = kind === JOB_KIND;
  const manifest: Obj = { ...args, apiVersion: plain ? (args.apiVersion ?? 'batch/v1') : kind.apiVersion, kind: kind.kind };
  if (plain) manifest.apiVersion = 'batch/v1';

  const labels = runLabels(request, agentName);
  const metadata: Obj = isRecord(manifest.metadata) ? manifest.metadata : {};
  manifest.metadata = metadata;
  metadata.namespace = namespace;
  metadata.labels = { ...(isRecord(metadata.labels) ? metadata.labels : {}), ...labels };
  const annotations: Record<string, string> = {
    ...(isRecord(metadata.annotations) ? (metadata.annotations as Record<string, string>) : {}),
    [ANNOTATION.itemId]: request.itemId,
    [ANNOTATION.runId]: request.runId,
    [ANNOTATION.queue]: request.queue,
  };
  const spec = specAnnotation(request.spec);
  if (spec !== undefined) annotations[ANNOTATION.spec] = spec;
  if (input.ownedSecrets?.length) annotations[ANNOTATION.secrets] = input.ownedSecrets.join(',');
  if (input.services?.length) annotations[ANNOTATION.services] = JSON.stringify(input.services);
  metadata.annotations = annotations;
  if (typeof metadata.name !== 'string' || metadata.name === '') {
    const given = typeof metadata.generateName === 'string' ? metadata.generateName : undefined;
    delete metadata.generateName;
    metadata.name = objectName(request, given);
  }
  // Holds the object (and so the run's outcome) until the agent has recorded its end; see `SubmittedRun.reported`.
  const finalizers = Array.isArray(metadata.finalizers) ? (metadata.finalizers as unknown[]) : [];
  if (!finalizers.includes(FINALIZER)) metadata.finalizers = [...finalizers, FINALIZER];

  let templates: Obj[];
  if (plain) {
    const jobSpec: Obj = isRecord(manifest.spec) ? manifest.spec : {};
    manifest.spec = jobSpec;
    jobSpec.backoffLimit ??= 0;
    jobSpec.ttlSecondsAfterFinished ??= 60;
    const template: Obj = isRecord(jobSpec.template) ? jobSpec.template : {};
    jobSpec.template = template;
    const podSpec: Obj = isRecord(template.spec) ? template.spec : {};
    template.spec = podSpec;
    if (!Array.isArray(podSpec.containers) || podSpec.containers.length === 0) podSpec.containers = [{}];
    podSpec.restartPolicy ??= 'Never';
    templates = [template];
  } else {
    templates = findPodTemplates(manifest.spec);
    if (templates.length === 0) {
      throw new LaunchError({
        code: 'run.no_pod_template',
        stage: 'run',
        category: 'InvalidSpec',
        message: `resource_args.kubernetes describes a ${kind.apiVersion} ${kind.kind} without any pod template (an object with spec.containers)`,
        hint: 'give the custom resource at least one pod template, e.g. spec.tasks[0].template for a Volcano Job',
      });
    }
  }

  const specImage = request.spec.docker?.docker_image ?? request.spec.image_uri ?? undefined;
  const anyImage = templates.some((t) => containersOf(t).some((c) => typeof c.image === 'string' && c.image !== ''));
  const setImage = request.image !== undefined && (specImage !== undefined || !anyImage);
  if (!anyImage && request.image === undefined) {
    throw new LaunchError({
      code: 'run.no_image',
      stage: 'run',
      category: 'InvalidSpec',
      message: 'the job has no image: neither the run request nor any container in resource_args.kubernetes names one',
      hint: 'give the job an image (docker.docker_image) or configure a builder',
    });
  }

  templates.forEach((template, ti) => {
    const tm: Obj = isRecord(template.metadata) ? template.metadata : {};
    template.metadata = tm;
    tm.labels = { ...(isRecord(tm.labels) ? tm.labels : {}), ...labels };
    const podSpec = template.spec as Obj;
    const containers = containersOf(template);
    containers.forEach((c, i) => {
      if (typeof c.name !== 'string' || c.name === '') c.name = `launch${i}`;
      c.securityContext = structuredClone(FORCED_SECURITY_CONTEXT);
      c.env = mergeEnv(c.env, envFor(request, input.apiKeySecret, ti === 0 && i === 0));
    });
    for (const c of Array.isArray(podSpec.initContainers) ? podSpec.initContainers : []) {
      if (isRecord(c)) c.securityContext = structuredClone(FORCED_SECURITY_CONTEXT);
    }
    const first = containers[0];
    if (first) {
      if (ti === 0 && setImage) first.image = request.image;
      if (request.entryPoint.length > 0) first.command = [...request.entryPoint];
      if (request.args.length > 0) first.args = [...request.args];
    }
    if (input.pullSecret) {
      const existing = Array.isArray(podSpec.imagePullSecrets) ? podSpec.imagePullSecrets : [];
      if (!existing.some((s) => isRecord(s) && s.name === input.pullSecret)) {
        podSpec.imagePullSecrets = [...existing, { name: input.pullSecret }];
      }
    }
  });
  if (request.code && input.code) {
    addCodeMount(
      templates,
      { ...input.code, mountPath: request.code.mountPath, ...(request.workingDir !== undefined ? { workingDir: request.workingDir } : {}) },
      (ti) => (plain ? 'spec.template.spec' : `pod template ${ti + 1}'s spec`),
    );
    annotations[CODE_ANNOTATION] = `${input.code.claimName}/${input.code.subPath}`;
  } else if (request.code?.source && input.codeInit) {
    const env = codeInitEnv(request, input.apiKeySecret, input.codeInit.env ?? {});
    addCodeMount(
      templates,
      {
        init: { image: input.codeInit.image, job: request.code.source.job, env },
        mountPath: request.code.mountPath,
        ...(request.workingDir !== undefined ? { workingDir: request.workingDir } : {}),
      },
      (ti) => (plain ? 'spec.template.spec' : `pod template ${ti + 1}'s spec`),
      FORCED_SECURITY_CONTEXT,
    );
  }
  return manifest;
}

function containersOf(template: Obj): Obj[] {
  const spec = template.spec;
  if (!isRecord(spec) || !Array.isArray(spec.containers)) return [];
  return spec.containers.map((c, i) => {
    if (isRecord(c)) return c;
    const replacement: Obj = {};
    (spec.containers as unknown[])[i] = replacement;
    return replacement;
  });
}

/** Every pod template (an object whose `spec` holds `containers`) inside a custom resource's spec. */
export function findPodTemplates(value: unknown, depth = 0, out: Obj[] = []): Obj[] {
  if (depth > 32) return out;
  if (Array.isArray(value)) {
    for (const v of value) findPodTemplates(v, depth + 1, out);
    return out;
  }
  if (!isRecord(value)) return out;
  if (isRecord(value.spec) && isPodSpec(value.spec)) {
    out.push(value);
    return out;
  }
  for (const v of Object.values(value)) findPodTemplates(v, depth + 1, out);
  return out;
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: unknown;
}

function envFor(request: RunRequest, apiKeySecret: string | undefined, first: boolean): EnvVar[] {
  const out: EnvVar[] = [];
  for (const [name, value] of Object.entries(request.env)) {
    if (name === 'WANDB_RUN_ID' && !first) continue;
    if (name === 'WANDB_API_KEY') {
      // The key never appears in a manifest: it is read from the per-run (or per-release) secret.
      if (apiKeySecret) out.push({ name, valueFrom: { secretKeyRef: { name: apiKeySecret, key: API_KEY_SECRET_KEY } } });
      continue;
    }
    out.push({ name, value });
  }
  return out;
}

/** The code init container's env: the run's API key (its secret reference), `WANDB_BASE_URL`, then `extra`. */
function codeInitEnv(request: RunRequest, apiKeySecret: string | undefined, extra: Record<string, string>): CodeEnvVar[] {
  const out: CodeEnvVar[] = [];
  // The per-run secret exists when the run has a key; under Helm the release's secret always holds one.
  if (apiKeySecret) out.push({ name: 'WANDB_API_KEY', valueFrom: { secretKeyRef: { name: apiKeySecret, key: API_KEY_SECRET_KEY } } });
  if (request.env.WANDB_BASE_URL !== undefined) out.push({ name: 'WANDB_BASE_URL', value: request.env.WANDB_BASE_URL });
  for (const [name, value] of Object.entries(extra)) if (!out.some((e) => e.name === name)) out.push({ name, value });
  return out;
}

function mergeEnv(existing: unknown, added: EnvVar[]): unknown[] {
  const names = new Set(added.map((e) => e.name));
  const kept = (Array.isArray(existing) ? existing : []).filter((e) => !(isRecord(e) && names.has(e.name as string)));
  return [...kept, ...added];
}

/**
 * An `additional_services` manifest made ready to create: W&B's labels (`wandb.ai/run-id`, `created-by`,
 * `auxiliary-resource`) plus ours for cleanup and adoption, a DNS-safe name, the namespace, and hardened containers.
 */
export function buildServiceManifest(config: Obj, input: BuildManifestInput, index: number): Obj {
  const { request, agentName, namespace } = input;
  const manifest = structuredClone(config);
  const metadata: Obj = isRecord(manifest.metadata) ? manifest.metadata : {};
  manifest.metadata = metadata;
  const entity = request.spec.entity ?? '';
  const project = request.spec.project ?? '';
  const aux = dnsSafe(`aux-${entity}-${project}-${request.runId}`);
  const labels = {
    [LABEL.runId]: labelValue(request.runId),
    [LABEL.createdBy]: CREATED_BY,
    [LABEL.auxiliary]: labelValue(aux),
    [LABEL.agent]: labelValue(agentName),
    [LABEL.itemId]: labelValue(request.itemId),
  };
  metadata.labels = { ...(isRecord(metadata.labels) ? metadata.labels : {}), ...labels };
  metadata.namespace = typeof metadata.namespace === 'string' && metadata.namespace ? metadata.namespace : namespace;
  const name = typeof metadata.name === 'string' && metadata.name ? metadata.name : `${aux}-${index}`;
  metadata.name = dnsSafe(name);
  for (const template of [manifest, ...findPodTemplates(manifest.spec)]) {
    if (!isRecord(template.spec) || !isPodSpec(template.spec as Obj)) continue;
    if (template !== manifest) {
      const tm: Obj = isRecord(template.metadata) ? template.metadata : {};
      template.metadata = tm;
      tm.labels = { ...(isRecord(tm.labels) ? tm.labels : {}), ...labels };
    }
    const env: EnvVar[] = [];
    if (request.env.WANDB_CONFIG !== undefined) env.push({ name: 'WANDB_CONFIG', value: request.env.WANDB_CONFIG });
    if (input.apiKeySecret && request.env.WANDB_API_KEY !== undefined) {
      env.push({ name: 'WANDB_API_KEY', valueFrom: { secretKeyRef: { name: input.apiKeySecret, key: API_KEY_SECRET_KEY } } });
    }
    for (const c of containersOf(template)) {
      c.securityContext = structuredClone(FORCED_SECURITY_CONTEXT);
      c.env = mergeEnv(c.env, env);
    }
  }
  return manifest;
}
