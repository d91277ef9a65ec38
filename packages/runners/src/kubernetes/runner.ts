import { LaunchError, childLogger, type CallContext, type RunRequest, type Runner, type SubmittedRun, type ValidationIssue } from '@launch/core';
import { parseRunRequest } from '../run-request.js';
import { findOrphans } from './adopt.js';
import { isConflict, isNotFound, kubeError } from './api-errors.js';
import { loadCluster, type Cluster } from './cluster.js';
import { cannotFetchCode, cannotMountCode, codeSubPath, copyCode, removeCode } from './code-mount.js';
import { ANNOTATION, labelValue } from './labels.js';
import {
  buildJobManifest,
  buildServiceManifest,
  FINALIZER,
  JOB_KIND,
  kindRef,
  manifestKind,
  resolveNamespace,
  runLabels,
  VOLCANO_KIND,
  type KindRef,
} from './manifest.js';
import { createMonitor, type Monitor } from './monitor.js';
import { parseKubernetesRunnerOptions, type KubernetesRunnerOptions } from './options.js';
import { createRunTracker } from './run.js';
import { apiKeySecretName, createApiKeySecret, createPullSecret, deleteSecret, pullSecretName, registryServer } from './secrets.js';
import { findKubernetesIssues, refusedArgsError } from './secure.js';
import { createServiceObject, deleteServiceObject, type ObjectRef } from './services.js';
import { findManifestIssues, invalidManifestError } from './validate-manifest.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** What the runner would submit for one request (a dry run): nothing is created, no cluster is called. */
export interface KubernetesPlan {
  /** The namespace the run object goes to (W&B's order; the kube context's namespace when a kube config is there). */
  namespace: string;
  /** `apiVersion kind` of the run object. */
  kind: string;
  /** The run object as it would be created; undefined when it cannot be built (the reason is in `issues`). */
  manifest?: Record<string, unknown>;
  /** The `additional_services` objects as they would be created. */
  services: Record<string, unknown>[];
  /** Every refused, unknown or misplaced field (safety rules and the kind's schema), by path. */
  issues: ValidationIssue[];
}

/** A Kubernetes runner plus introspection used by tests and benchmarks. */
export interface KubernetesRunner extends Runner {
  /**
   * The submission `run` would make for this request, checked as `run` checks it, without calling the cluster.
   * The API key is never in it: the manifest reads it from the `wandb-api-key-*` secret.
   */
  plan(request: RunRequest): KubernetesPlan;
  adopt(agentName: string, ctx: CallContext): Promise<SubmittedRun[]>;
  close(): Promise<void>;
  /** Open watches and their counters. */
  watchStats(): { informers: number; lists: number; watches: number; relists410: number; reconnects: number };
}

/**
 * Runs jobs as Kubernetes Jobs (W&B's manifest semantics), Volcano Jobs or any custom resource, follows them with one
 * shared watch per namespace and kind, diagnoses stuck and failed pods, keeps the failed pod's log tail, adopts its
 * jobs after an agent restart, and never creates two Jobs for one queue item.
 */
export function createKubernetesRunner(options: KubernetesRunnerOptions = {}): KubernetesRunner {
  const opts = parseKubernetesRunnerOptions(options);
  const logger = childLogger(opts.logger, { runner: 'kubernetes' });
  const monitor: Monitor = createMonitor({ logger, backoff: opts.watchBackoffMs, timeoutSeconds: opts.watchTimeoutSeconds, idleStopMs: opts.watchIdleMs });
  const clusters = new Map<string, Cluster>();
  let closed = false;

  const cluster = (configFile: string | undefined, context: string | undefined): Cluster => {
    const key = `${configFile ?? ''}#${context ?? ''}`;
    let c = clusters.get(key);
    if (!c) clusters.set(key, (c = loadCluster(configFile, context)));
    return c;
  };

  const adoptKinds = () => [JOB_KIND, ...(opts.volcano ? [VOLCANO_KIND] : []), ...opts.customKinds.map((k) => kindRef(k.apiVersion, k.kind))];

  const serviceConfigs = (request: RunRequest): Obj[] => (request.spec.additional_services ?? []).map((s) => s.config as Obj);

  /** Fields refused for safety (W&B's `validate_launch_resource_args`, secure_mode), in the args and every service. */
  const securityIssues = (request: RunRequest): ValidationIssue[] => {
    const issues = findKubernetesIssues(request.resourceArgs, { secureMode: opts.secureMode });
    serviceConfigs(request).forEach((config, i) => {
      for (const issue of findKubernetesIssues(config))
        issues.push({ ...issue, path: `additional_services[${i}].config${issue.path ? `.${issue.path}` : ''}` });
    });
    // The item's own override is refused; the job's entry point and the agent's install wrapper of a base-image
    // job are not overrides.
    const override = request.spec.overrides?.entry_point ?? [];
    if (opts.secureMode && override.length > 0) {
      issues.push({
        path: 'overrides.entry_point',
        expected: 'no entry point override (secure_mode)',
        found: `an array of ${override.length}`,
        message: 'overriding the entry point is not allowed in secure_mode',
      });
    }
    return issues;
  };

  /** Schema problems of the rendered run object and service manifests, with paths from the resource args. */
  const schemaIssues = (manifest: Obj | undefined, serviceManifests: Obj[]): ValidationIssue[] => {
    const issues = manifest ? findManifestIssues(manifest) : [];
    serviceManifests.forEach((m, i) => {
      const prefix = `additional_services[${i}].config`;
      for (const issue of findManifestIssues(m)) {
        issues.push({
          ...issue,
          path: issue.path ? `${prefix}.${issue.path}` : prefix,
          message: issue.message.replace('(did you mean ', `(did you mean ${prefix}.`),
        });
      }
    });
    return issues;
  };

  /**
   * How the run's code reaches its pod: copied onto the code PVC, or fetched again by the init container into an
   * emptyDir; undefined without code. Throws when neither can serve the request.
   */
  const codeMode = (request: RunRequest, apiKeySecret: string | undefined): 'pvc' | 'init' | undefined => {
    if (!request.code) return undefined;
    if (opts.codePvc) return 'pvc';
    if (!opts.codeInitImage) throw cannotMountCode();
    if (!request.code.source) throw cannotFetchCode('local');
    if (!apiKeySecret) throw cannotFetchCode('no_api_key', request.code.source.sourceString);
    return 'init';
  };
  const codeInit = () => ({ image: opts.codeInitImage!, env: opts.codeInitEnv });

  const plan = (raw: RunRequest): KubernetesPlan => {
    const request = parseRunRequest(raw);
    const agentName = opts.agentName ?? request.agentName;
    const args = request.resourceArgs as Obj;
    const issues = securityIssues(request);
    let contextNamespace: string | undefined;
    try {
      contextNamespace = cluster(
        typeof args.configFile === 'string' ? args.configFile : opts.kubeconfigPath,
        typeof args.context === 'string' ? args.context : opts.context,
      ).contextNamespace;
    } catch {
      // No kube config here: the plan names the namespace without the context's default.
    }
    const namespace = resolveNamespace(args, opts.namespace, contextNamespace);
    const kind = manifestKind(args);
    const apiKeySecret = opts.releaseName
      ? apiKeySecretName(opts.releaseName)
      : request.env.WANDB_API_KEY !== undefined
        ? apiKeySecretName(request.runId)
        : undefined;
    const pullSecret = opts.registry?.needsPullSecret && opts.registry.uri ? pullSecretName(request.runId) : undefined;
    const manifestInput = { request, agentName, namespace, apiKeySecret, pullSecret };
    let manifest: Obj | undefined;
    try {
      manifest = buildJobManifest(manifestInput);
      let mode: 'pvc' | 'init' | undefined;
      try {
        mode = codeMode(request, apiKeySecret);
      } catch (error) {
        if (!LaunchError.isInstance(error)) throw error;
        const [expected, found] =
          error.code === 'run.cannot_mount_code'
            ? ["a code PVC to copy the job's code to (codePvc), or an image for the code init container (codeInitImage)", 'neither']
            : request.code?.source
              ? ['a W&B API key for the code init container', 'none']
              : ['code the init container can fetch (a W&B job)', "a directory of the agent's machine"];
        issues.push({ path: 'code', expected, found, message: error.message });
      }
      if (mode === 'pvc' && opts.codePvc) {
        const code = { claimName: opts.codePvc.name, subPath: codeSubPath(String((manifest.metadata as Obj).name)) };
        manifest = buildJobManifest({ ...manifestInput, code });
      } else if (mode === 'init') {
        manifest = buildJobManifest({ ...manifestInput, codeInit: codeInit() });
      }
    } catch (error) {
      if (!LaunchError.isInstance(error)) throw error;
      issues.push({ path: '', expected: 'a manifest the runner can build', found: error.code, message: error.message });
    }
    const services = serviceConfigs(request).map((config, i) => buildServiceManifest(config, manifestInput, i));
    issues.push(...schemaIssues(manifest, services));
    return { namespace, kind: `${kind.apiVersion} ${kind.kind}`, manifest, services, issues };
  };

  /** Runs of this process by queue item: a redelivered item is followed, not created again. */
  const byItem = new Map<string, Promise<SubmittedRun>>();

  const run = (raw: RunRequest, ctx: CallContext): Promise<SubmittedRun> => {
    const itemId = (raw as { itemId?: unknown })?.itemId;
    if (typeof itemId === 'string' && byItem.has(itemId)) return byItem.get(itemId)!;
    const p = submit(raw, ctx);
    if (typeof itemId === 'string') {
      byItem.set(itemId, p);
      p.then(
        (r) => void r.wait().finally(() => byItem.delete(itemId)),
        () => byItem.delete(itemId),
      );
    }
    return p;
  };

  const submit = async (raw: RunRequest, ctx: CallContext): Promise<SubmittedRun> => {
    if (closed) throw new LaunchError({ code: 'run.runner_closed', stage: 'run', message: 'the kubernetes runner is closed' });
    const request = parseRunRequest(raw);
    const log = childLogger(ctx.logger ?? logger, { itemId: request.itemId, runId: request.runId });
    const agentName = opts.agentName ?? request.agentName;
    if (!agentName) {
      throw new LaunchError({
        code: 'run.no_agent_name',
        stage: 'run',
        message: 'the kubernetes runner needs an agent name for its labels (none in the options or the run request)',
        hint: 'pass agentName to createKubernetesRunner',
      });
    }
    const perRunKey = !opts.releaseName && request.env.WANDB_API_KEY !== undefined;
    const apiKeySecret = opts.releaseName ? apiKeySecretName(opts.releaseName) : perRunKey ? apiKeySecretName(request.runId) : undefined;
    const mode = codeMode(request, apiKeySecret);
    const codePvc = mode === 'pvc' ? opts.codePvc : undefined;
    const initInput = mode === 'init' ? { codeInit: codeInit() } : {};
    const args = request.resourceArgs as Obj;
    const services = serviceConfigs(request);
    const issues = securityIssues(request);
    if (issues.length > 0) throw refusedArgsError(issues, { secureMode: opts.secureMode });
    {
      // Checked against its kind's schema before the cluster is touched: a field the API server would drop is refused
      // here (the namespace and secret names do not change what is valid).
      const draftInput = {
        request,
        agentName,
        namespace: resolveNamespace(args, opts.namespace),
        ...(codePvc ? { code: { claimName: codePvc.name, subPath: 'draft' } } : {}),
        ...(apiKeySecret ? { apiKeySecret } : {}),
        ...initInput,
      };
      const invalid = schemaIssues(
        buildJobManifest(draftInput),
        services.map((config, i) => buildServiceManifest(config, draftInput, i)),
      );
      if (invalid.length > 0) throw invalidManifestError(invalid, 'resource_args.kubernetes');
    }

    const c = cluster(
      typeof args.configFile === 'string' ? args.configFile : opts.kubeconfigPath,
      typeof args.context === 'string' ? args.context : opts.context,
    );
    const namespace = resolveNamespace(args, opts.namespace, c.contextNamespace);
    const kind = manifestKind(args);
    const itemLabel = labelValue(request.itemId);
    const target = { cluster: c, namespace, kind, agentName, itemLabel };

    let pullSecret: string | undefined;
    let credentials = null;
    if (opts.registry?.needsPullSecret && opts.registry.uri) {
      credentials = await opts.registry.credentials({ logger: log });
      if (credentials) pullSecret = pullSecretName(request.runId);
    }
    const ownedSecrets = [...(perRunKey && apiKeySecret ? [apiKeySecret] : []), ...(pullSecret ? [pullSecret] : [])];

    // Build first: a manifest error must not leave secrets behind.
    const baseInput = { request, agentName, namespace, apiKeySecret, pullSecret, ownedSecrets };
    const objectName = String((buildJobManifest(baseInput).metadata as Obj).name);
    // The run's own directory on the code PVC: a fresh name per submission, so no two runs ever share one.
    const code = codePvc ? { claimName: codePvc.name, subPath: codeSubPath(objectName) } : undefined;
    const manifestInput = { ...baseInput, ...(code ? { code } : {}), ...initInput };

    const created: ObjectRef[] = [];
    const tracker = createRunTracker({
      cluster: c,
      namespace,
      kind,
      agentName,
      itemLabel,
      runId: request.runId,
      itemId: request.itemId,
      queue: request.queue,
      spec: request.spec,
      secrets: ownedSecrets,
      services: created,
      logTailLines: opts.logTailLines,
      streamLogs: opts.streamLogs,
      monitor,
      logger: log,
      ...(opts.codePvc ? { code: opts.codePvc } : {}),
    });
    try {
      // The watches list before anything is created: a missing permission or CRD fails here with nothing left
      // behind, and the list tells whether this item already has a Job (a crash between create and ack).
      await untilAborted(tracker.synced, ctx.signal).catch((error: unknown) => {
        if (isNotFound(error)) throw kindNotInstalled(kind, namespace);
        throw kubeError(error, { verb: 'list', resource: `${kind.group || 'core'}/${kind.plural} and core/pods`, namespace });
      });
      const existing = monitor.cached(target).find((o) => o?.metadata?.annotations?.[ANNOTATION.itemId] === request.itemId && holdsOutcome(o));
      if (existing) {
        log.info({ name: existing.metadata.name }, 'the queue item already has a job: following it instead of creating another');
        return tracker.submitted(existing.metadata.name);
      }
      if (request.attachOnly) {
        // An earlier claim acked this item and was lost. Ask the API server itself, not only the cache.
        const found = await readObject(c, kind, namespace, objectName);
        if (found && found.metadata?.annotations?.[ANNOTATION.itemId] === request.itemId && holdsOutcome(found)) {
          log.info({ name: objectName }, 'following the job an earlier claim of this item started');
          return tracker.submitted(objectName);
        }
        throw new LaunchError({
          code: 'run.outcome_lost',
          stage: 'run',
          message: `the outcome of run ${request.runId} is lost: an earlier claim of this item started it, its agent died, and the ${kind.kind} "${objectName}" is no longer in namespace "${namespace}"; not starting it again`,
          hint: `the ${kind.kind} was deleted before an agent recorded its end (its "${FINALIZER}" finalizer removed by hand?); check the run in W&B or the cluster's events, and enqueue the job again if it must run`,
        });
      }
    } catch (error) {
      tracker.detach();
      throw error;
    }

    const made: string[] = [];
    let copied = false;
    try {
      if (code && codePvc && request.code) {
        // Before anything is created in the cluster: the pod must find its code complete when it starts.
        const dest = await copyCode(request.code.dir, codePvc.mountPath, code.subPath);
        copied = true;
        log.info({ dir: dest, claim: codePvc.name, subPath: code.subPath }, "copied the job's code to the code PVC");
      }
      const labels = runLabels(request, agentName);
      if (perRunKey && apiKeySecret) {
        await createApiKeySecret({ cluster: c, namespace, name: apiKeySecret, labels, apiKey: request.env.WANDB_API_KEY! });
        made.push(apiKeySecret);
      }
      if (pullSecret && credentials && opts.registry) {
        await createPullSecret({ cluster: c, namespace, name: pullSecret, labels, server: registryServer(opts.registry.uri), credentials });
        made.push(pullSecret);
      }
      for (const [i, config] of services.entries()) {
        const ref = await createServiceObject(c, buildServiceManifest(config, manifestInput, i));
        created.push(ref);
      }
      const manifest = buildJobManifest({ ...manifestInput, services: created });
      let result: Obj;
      try {
        result = (await c.custom.createNamespacedCustomObject({
          group: kind.group,
          version: kind.version,
          namespace,
          plural: kind.plural,
          body: manifest,
          // A real API server drops unknown fields with only a warning unless asked to refuse them.
          fieldValidation: 'Strict',
        })) as Obj;
      } catch (error) {
        if (isNotFound(error) && !(await namespaceExists(c, namespace))) {
          throw kubeError(error, { verb: 'create', resource: `${kind.group || 'core'}/${kind.plural}`, namespace });
        }
        if (isNotFound(error)) throw kindNotInstalled(kind, namespace);
        if (!isConflict(error)) throw kubeError(error, { verb: 'create', resource: `${kind.group || 'core'}/${kind.plural}`, namespace });
        // The name is derived from the item: a 409 means this item's Job exists (created by an earlier attempt
        // that the cache has not seen yet), unless another object took the name.
        const name = objectName;
        const found = await readObject(c, kind, namespace, name);
        if (found?.metadata?.annotations?.[ANNOTATION.itemId] !== request.itemId) {
          throw new LaunchError({
            code: 'run.name_conflict',
            stage: 'run',
            message: `a ${kind.kind} named "${name}" already exists in namespace "${namespace}" and belongs to another queue item`,
            hint: 'remove metadata.name from resource_args (the agent then derives a name per queue item), or delete that object',
          });
        }
        log.info({ name }, 'the queue item already has a job (409 from the API server): following it');
        if (copied && code && codePvc) {
          // That Job has its own copy of the code (named in its annotation); this one is not used.
          copied = false;
          await removeCode(codePvc.mountPath, code.subPath).catch((e: unknown) =>
            log.warn({ err: (e as Error).message }, 'could not remove an unused copy of the code'),
          );
        }
        return tracker.submitted(name);
      }
      const name = String(result?.metadata?.name ?? '');
      log.info({ name, namespace, kind: `${kind.apiVersion} ${kind.kind}` }, 'kubernetes job created');
      return tracker.submitted(name, code?.subPath);
    } catch (error) {
      tracker.detach();
      await Promise.allSettled([
        ...made.map((s) => deleteSecret(c, namespace, s)),
        ...created.map((r) => deleteServiceObject(c, r)),
        ...(copied && code && codePvc ? [removeCode(codePvc.mountPath, code.subPath)] : []),
      ]);
      throw error;
    }
  };

  return {
    specificationVersion: 'v1',
    name: 'kubernetes',
    // W&B shows the Kubernetes runner's warnings under the stage `Kubernetes`.
    warningStage: 'Kubernetes',
    resources: ['kubernetes'],
    // Code is mounted from the code PVC (codePvc), or an emptyDir the code init container fills (codeInitImage);
    // with neither, a run with code fails with `run.cannot_mount_code`.
    capabilities: { adopt: true, remote: true, needsImage: true, mountsCode: true },
    run,
    plan,
    async adopt(agentName, ctx) {
      const name = opts.agentName ?? agentName;
      const c = cluster(opts.kubeconfigPath, opts.context);
      const own = opts.namespace ?? c.contextNamespace ?? 'default';
      const namespaces = [...new Set([own, ...opts.adoptNamespaces])];
      const orphans = await findOrphans(c, name, adoptKinds(), namespaces, ctx.logger ?? logger);
      return orphans.map((o) => {
        const tracker = createRunTracker({
          cluster: c,
          namespace: o.namespace,
          kind: o.kind,
          agentName: name,
          itemLabel: o.itemLabel,
          runId: o.runId,
          itemId: o.itemId,
          queue: o.queue,
          spec: o.spec,
          secrets: o.secrets,
          services: o.services,
          logTailLines: opts.logTailLines,
          streamLogs: opts.streamLogs,
          monitor,
          logger: childLogger(logger, { itemId: o.itemId, runId: o.runId, adopted: true }),
          ...(opts.codePvc ? { code: opts.codePvc } : {}),
        });
        return tracker.submitted(o.name);
      });
    },
    async close() {
      closed = true;
      monitor.close();
    },
    watchStats: () => ({ informers: monitor.informerCount(), ...monitor.stats() }),
  };
}

/** Whether an object still holds its run's outcome: not being deleted, or held by the agent's finalizer. */
export function holdsOutcome(obj: Obj): boolean {
  if (!obj?.metadata?.deletionTimestamp) return true;
  const finalizers: unknown = obj.metadata.finalizers;
  return Array.isArray(finalizers) && finalizers.includes(FINALIZER);
}

async function readObject(c: Cluster, kind: KindRef, namespace: string, name: string): Promise<Obj | undefined> {
  try {
    return (await c.custom.getNamespacedCustomObject({ group: kind.group, version: kind.version, namespace, plural: kind.plural, name })) as Obj;
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw kubeError(error, { verb: 'get', resource: `${kind.group || 'core'}/${kind.plural}`, namespace, name });
  }
}

async function namespaceExists(c: Cluster, namespace: string): Promise<boolean> {
  try {
    await c.core.readNamespace({ name: namespace });
    return true;
  } catch (error) {
    // Without permission to read namespaces, assume it exists: the kind is then what is missing.
    return !isNotFound(error);
  }
}

/** A run whose kind the cluster does not serve (its CRD or API group is not installed) fails at once. */
export function kindNotInstalled(kind: KindRef, namespace: string): LaunchError {
  const volcano = kind.group === 'batch.volcano.sh';
  const kubeflow = kind.group === 'kubeflow.org';
  const jobset = kind.group === 'jobset.x-k8s.io';
  const product = volcano ? 'Volcano' : kubeflow ? 'the Kubeflow training operator' : jobset ? 'JobSet' : `the operator that serves ${kind.kind}`;
  return new LaunchError({
    code: 'run.kind_not_installed',
    stage: 'run',
    message: `the cluster has no ${kind.apiVersion} ${kind.plural} (the API server does not serve ${kind.group}/${kind.version}, namespace "${namespace}")`,
    hint: `install ${product} (its CRD), or use a plain Job (apiVersion batch/v1) in resource_args.kubernetes`,
  });
}

/** Resolves or rejects with `work`, or rejects with the signal's reason once it aborts (a stopping agent). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
