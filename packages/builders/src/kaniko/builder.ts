import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import type { BatchV1Api, CoreV1Api, KubeConfig, Log, Watch } from '@kubernetes/client-node';
import {
  childLogger,
  LaunchError,
  toLaunchError,
  type BuildRequest,
  type Builder,
  type CallContext,
  type ContextStore,
  type Logger,
  type Registry,
} from '@launch/core';
import { specImage } from '@launch/core/internal';
import { abortedError, contextError, throwIfAborted } from '../context/errors.js';
import { packContext } from '../context/pack.js';
import { resolveBuildContext } from '../context/resolve.js';
import { contentTag, splitImageUri, validateRepository, wandbJobSourceString, wandbTag } from '../context/tag.js';
import { contextInputFromRequest, type DockerBuildResult } from '../docker/builder.js';
import { buildKanikoJob, KANIKO_DEFAULTS, kanikoJobName, type KanikoCredentialMounts } from './job.js';
import { parseKanikoBuilderOptions, type KanikoBuilderOptions, type ResolvedKanikoBuilderOptions } from './options.js';
import { createPvcContextStore } from './pvc-store.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** What the kaniko builder reports: the docker builder's result plus the Job it ran. */
export interface KanikoBuildResult extends DockerBuildResult {
  /** `namespace/name` of the build Job (absent when nothing was built). */
  job?: string;
}

/** The kaniko builder. */
export interface KanikoBuilder extends Builder {
  build(request: BuildRequest, ctx: CallContext): Promise<KanikoBuildResult>;
}

interface Kube {
  kc: KubeConfig;
  batch: BatchV1Api;
  core: CoreV1Api;
  watch: Watch;
  log: Log;
}

/** Label on the build pod naming its Job, so the builder can watch for the pod and follow its log. */
export const BUILD_JOB_LABEL = 'launch.build/job';

const statusCode = (e: unknown): number | undefined => {
  const x = e as { code?: unknown; statusCode?: unknown } | null;
  return typeof x?.code === 'number' ? x.code : typeof x?.statusCode === 'number' ? x.statusCode : undefined;
};
function statusMessage(e: unknown): string {
  const body = (e as { body?: unknown } | null)?.body;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: string };
      if (parsed.message) return parsed.message;
    } catch {
      return body.slice(0, 300);
    }
  }
  if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') return (body as { message: string }).message;
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (typeof code === 'string') return code;
  return e instanceof Error ? (e.message.split('\n')[0] ?? e.message) : String(e);
}

function kubeFailure(error: unknown, doing: string, namespace: string): LaunchError {
  if (LaunchError.isInstance(error)) return error;
  const code = statusCode(error);
  const denied = code === 401 || code === 403;
  return new LaunchError({
    code: denied ? 'build.kubernetes_forbidden' : 'build.kubernetes_api',
    stage: 'build',
    category: denied ? 'PermissionDenied' : 'BuildFailed',
    retryable: code === undefined || code === 429 || code >= 500,
    message: `the Kubernetes API refused to ${doing} in namespace "${namespace}"${code ? ` (HTTP ${code})` : ''}: ${statusMessage(error)}`,
    hint: denied
      ? `the agent's service account needs create/get/watch/delete on batch/jobs and configmaps, and get on pods and pods/log, in namespace "${namespace}"`
      : code === 404
        ? `check that namespace "${namespace}" exists (the kaniko builder's namespace option)`
        : code === 422 || code === 400
          ? 'the apiserver refused the build Job: check builder.kaniko-config'
          : 'check the agent can reach the cluster; the item can be retried',
    cause: error,
  });
}

/** Job finished? `complete`, `failed` (with the condition's reason and message), or undefined. */
function jobOutcome(job: Json | undefined): { state: 'complete' | 'failed'; reason?: string; message?: string } | undefined {
  const conditions: Json[] = Array.isArray(job?.status?.conditions) ? job!.status.conditions : [];
  const on = (type: string) => conditions.find((c) => c?.type === type && c?.status === 'True');
  const failed = on('Failed') ?? on('FailureTarget');
  if (failed) return { state: 'failed', reason: failed.reason, message: failed.message };
  if (on('Complete') ?? on('SuccessCriteriaMet')) return { state: 'complete' };
  return undefined;
}

const ECR_HOST = /^(?:[\w-]+)\.dkr\.ecr\.([\w-]+)\.amazonaws\.com$/;
const GAR_HOST = /^[\w-]+-docker\.pkg\.dev$/;
const ACR_HOST = /^[\w]+\.azurecr\.io$/;

/**
 * Builds job images with kaniko in a Kubernetes Job, as W&B's kaniko builder does:
 *
 * 1. the build context (W&B's precedence, see the context module) is packed once, deterministically,
 *    into a temporary tar.gz whose content gives the source-hash tag;
 * 2. when the registry already has `<repository>:<tag>` the build is skipped (not with a
 *    `dockerConfigSecret`, as W&B);
 * 3. the archive is uploaded through the context store (`request.contextStore`, else the option) as
 *    `<run id>.tgz`, or copied to the PVC (`pvcName`) and read as `tar:///context/<run id>.tgz`;
 * 4. a Job `<buildJobName>-<run id>` is created from `kaniko-config` merged with ours
 *    ({@link buildKanikoJob}), with W&B's credential mounts and ConfigMaps;
 * 5. the builder waits on a watch of that Job (no polling) for at most three times
 *    `buildTimeoutSeconds`; the build log goes to `onProgress`, and a failure is `BuildFailed` at
 *    stage `build` with the log's tail and a `kubectl logs` hint;
 * 6. the Job (with its pods), the ConfigMaps, the uploaded context and the temporary file are removed
 *    on every path: success, failure and cancellation through `ctx.signal`.
 *
 * Construction refuses what W&B refuses: no context store and no PVC.
 *
 * @example
 * const builder = createKanikoBuilder({ contextStore: createS3ContextStore({ uri: 's3://bucket/ctx', region }), destination: '123.dkr.ecr.us-east-1.amazonaws.com/train' });
 * const { imageUri, cached } = await builder.build({ spec, runId, itemId, contextDir, registry }, ctx);
 */
export function createKanikoBuilder(options: KanikoBuilderOptions): KanikoBuilder {
  const config: ResolvedKanikoBuilderOptions = parseKanikoBuilderOptions(options);
  const namespace = config.namespace;
  const pvcStore = config.pvcName ? createPvcContextStore({ mountPath: config.pvcMountPath }) : undefined;
  let kube: Promise<Kube> | undefined;

  function client(): Promise<Kube> {
    kube ??= import('@kubernetes/client-node').then((k) => {
      const kc = new k.KubeConfig();
      try {
        if (config.kubeconfigPath) kc.loadFromFile(config.kubeconfigPath);
        else kc.loadFromDefault();
        if (config.context) kc.setCurrentContext(config.context);
        if (!kc.getCurrentCluster()) throw new Error('the kube config has no current cluster');
      } catch (error) {
        throw new LaunchError({
          code: 'builder.kubeconfig',
          stage: 'agent',
          message: `the kaniko builder cannot load the kube config${config.kubeconfigPath ? ` "${config.kubeconfigPath}"` : ''}: ${error instanceof Error ? error.message : String(error)}`,
          hint: 'give the kaniko builder a kube config (kubeconfigPath, $KUBECONFIG) or run the agent in the cluster',
          cause: error,
        });
      }
      return { kc, batch: kc.makeApiClient(k.BatchV1Api), core: kc.makeApiClient(k.CoreV1Api), watch: new k.Watch(kc), log: new k.Log(kc) };
    });
    kube.catch(() => (kube = undefined));
    return kube;
  }

  /** Volumes, env and ConfigMaps for kaniko's credentials, per W&B. */
  async function credentials(jobName: string, repository: string, registry: Registry | undefined, contextUri: string, ctx: CallContext) {
    const mounts: KanikoCredentialMounts = { env: [], volumes: [], volumeMounts: [], podLabels: {} };
    const configMaps: Json[] = [];
    const host = repository.includes('/') ? repository.slice(0, repository.indexOf('/')) : repository;
    if (config.pvcName) {
      mounts.volumes.push({ name: 'kaniko-pvc', persistentVolumeClaim: { claimName: config.pvcName } });
      mounts.volumeMounts.push({ name: 'kaniko-pvc', mountPath: KANIKO_DEFAULTS.pvcContextMount });
    }
    if (config.secretName && config.secretKey) {
      const ecr = ECR_HOST.exec(host);
      let mountPath: string;
      let path: string;
      if (ecr || registry?.name === 'ecr') {
        mountPath = '/root/.aws';
        path = 'credentials';
        const region = config.awsRegion ?? ecr?.[1];
        if (region) mounts.env.push({ name: 'AWS_REGION', value: region });
      } else if (GAR_HOST.test(host) || registry?.name === 'gcr') {
        mountPath = '/kaniko/.config/gcloud';
        path = 'config.json';
        mounts.env.push({ name: 'GOOGLE_APPLICATION_CREDENTIALS', value: '/kaniko/.config/gcloud/config.json' });
      } else {
        throw new LaunchError({
          code: 'builder.kaniko_secret_unsupported',
          stage: 'build',
          category: 'BuildFailed',
          message: `builder.secret-name/secret-key give kaniko cloud credentials for ECR or Artifact Registry, but the destination ${repository} is neither`,
          hint: 'for other registries mount a docker config instead (WANDB_LAUNCH_KANIKO_AUTH_SECRET, the dockerConfigSecret option), or remove secret-name/secret-key',
        });
      }
      mounts.volumes.push({ name: config.secretName, secret: { secretName: config.secretName, items: [{ key: config.secretKey, path }] } });
      mounts.volumeMounts.push({ name: config.secretName, mountPath, readOnly: true });
    }
    if (/^https:\/\/[^/]+\.blob\.core\.windows\.net\//.test(contextUri)) {
      mounts.env.push({ name: 'AZURE_STORAGE_ACCESS_KEY', valueFrom: { secretKeyRef: { name: config.azureStorageKeySecret, key: 'password' } } });
    }
    let dockerConfig: Json | undefined;
    if (config.dockerConfigSecret) {
      mounts.volumes.push({
        name: 'kaniko-docker-config',
        secret: { secretName: config.dockerConfigSecret, items: [{ key: '.dockerconfigjson', path: 'config.json' }] },
      });
      mounts.volumeMounts.push({ name: 'kaniko-docker-config', mountPath: '/kaniko/.docker' });
    } else if (ACR_HOST.test(host) || registry?.name === 'acr') {
      dockerConfig = { credHelpers: { [host]: 'acr-env' } };
      mounts.podLabels['azure.workload.identity/use'] = 'true';
    } else if (registry) {
      // W&B writes the registry's credentials for kaniko (docker-config-<job>); an open registry needs none.
      const creds = await registry.credentials(ctx);
      if (creds) dockerConfig = { auths: { [host]: { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') } } };
    }
    if (dockerConfig) {
      const name = `docker-config-${jobName}`.slice(0, 253);
      configMaps.push({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name, namespace, labels: { wandb: 'launch' } },
        data: { 'config.json': JSON.stringify(dockerConfig) },
        immutable: true,
      });
      mounts.volumes.push({ name: 'docker-config', configMap: { name } });
      mounts.volumeMounts.push({ name: 'docker-config', mountPath: '/kaniko/.docker' });
    }
    return { mounts, configMaps };
  }

  /** Waits on a watch of the Job until it finishes, `deadline` passes or `signal` fires. */
  async function waitForJob(
    k: Kube,
    name: string,
    deadline: number,
    signal: AbortSignal | undefined,
  ): Promise<{ job: Json; outcome: NonNullable<ReturnType<typeof jobOutcome>> }> {
    const path = `/apis/batch/v1/namespaces/${namespace}/jobs`;
    for (;;) {
      throwIfAborted(signal, 'the kaniko build');
      let job: Json;
      try {
        job = (await k.batch.readNamespacedJob({ name, namespace })) as Json;
      } catch (error) {
        if (statusCode(error) === 404) {
          throw new LaunchError({
            code: 'build.job_deleted',
            stage: 'build',
            category: 'BuildFailed',
            retryable: true,
            message: `the kaniko build Job ${namespace}/${name} was deleted before it finished`,
            hint: 'something else removed the build Job; the item can be retried',
          });
        }
        throw kubeFailure(error, `read the build Job ${name}`, namespace);
      }
      const done = jobOutcome(job);
      if (done) return { job, outcome: done };
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new LaunchError({
          code: 'build.timeout',
          stage: 'build',
          category: 'BuildFailed',
          retryable: true,
          message: `the kaniko build Job ${namespace}/${name} did not finish within ${Math.round((3 * config.buildTimeoutSeconds) / 60)} minutes`,
          hint: `look at the build pod (kubectl get pods -n ${namespace} -l wandb=launch); raise buildTimeoutSeconds if builds are this slow`,
        });
      }
      // Watch from the version just read; a closed watch (timeout, dropped connection) loops back to a read.
      const seen = await new Promise<Json | 'deleted' | undefined>((resolve) => {
        let controller: AbortController | undefined;
        let settled = false;
        const finish = (value: Json | 'deleted' | undefined) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          controller?.abort();
          resolve(value);
        };
        const onAbort = () => finish(undefined);
        const timer = setTimeout(() => finish(undefined), Math.min(remaining, 300_000) + 1000);
        signal?.addEventListener('abort', onAbort, { once: true });
        k.watch
          .watch(
            path,
            {
              fieldSelector: `metadata.name=${name}`,
              resourceVersion: job.metadata?.resourceVersion,
              timeoutSeconds: Math.max(1, Math.min(300, Math.ceil(remaining / 1000))),
            },
            (type: string, obj: Json) => {
              if (type === 'DELETED') finish('deleted');
              else if ((type === 'ADDED' || type === 'MODIFIED') && jobOutcome(obj)) finish(obj);
            },
            () => finish(undefined),
          )
          .then(
            (c) => {
              controller = c;
              if (settled) c.abort();
            },
            () => finish(undefined),
          );
      });
      if (seen && seen !== 'deleted') return { job: seen, outcome: jobOutcome(seen)! };
      // 'deleted' or a closed watch: the read at the top of the loop decides.
    }
  }

  /** The build pod's log (last `tailLines` lines when `tail`), or undefined when there is none. */
  async function podLog(k: Kube, job: Json, tail: number | undefined): Promise<{ pod?: string; lines: string[] }> {
    let pods: Json[];
    try {
      const list = (await k.core.listNamespacedPod({ namespace, labelSelector: 'wandb=launch' })) as Json;
      pods = (list.items ?? []).filter((p: Json) => (p.metadata?.ownerReferences ?? []).some((o: Json) => o.uid === job.metadata?.uid));
    } catch {
      return { lines: [] };
    }
    pods.sort((a, b) => String(b.metadata?.creationTimestamp ?? '').localeCompare(String(a.metadata?.creationTimestamp ?? '')));
    const pod = pods[0];
    if (!pod) return { lines: [] };
    const container = pod.spec?.containers?.[0]?.name;
    try {
      const text = (await k.core.readNamespacedPodLog({
        name: pod.metadata.name,
        namespace,
        container,
        ...(tail ? { tailLines: tail } : {}),
      })) as unknown as string;
      return {
        pod: pod.metadata.name,
        lines: String(text ?? '')
          .replace(/\n$/, '')
          .split('\n')
          .filter((l, i, all) => l !== '' || i < all.length - 1),
      };
    } catch {
      return { pod: pod.metadata.name, lines: [] };
    }
  }

  /**
   * Follows the build pod's log as it is written: a watch on pods labelled with the Job's name; once the
   * container has started, a `follow=true` log stream, split into lines for `onLine`. `stop()` ends both
   * and waits (briefly) for the stream's end, so no line is lost.
   */
  function followLog(k: Kube, jobName: string, onLine: (line: string) => void) {
    const lines: string[] = [];
    let partial = '';
    let followed: string | undefined;
    let watchController: AbortController | undefined;
    let logController: AbortController | undefined;
    let stopped = false;
    let resolveEnded!: () => void;
    const ended = new Promise<void>((resolve) => (resolveEnded = resolve));
    const push = (line: string) => {
      lines.push(line);
      if (lines.length > config.tailLines) lines.shift();
      onLine(line);
    };
    const sink = new Writable({
      write(chunk: Buffer, _enc, callback) {
        const text = partial + chunk.toString('utf8');
        const parts = text.split('\n');
        partial = parts.pop() ?? '';
        for (const line of parts) push(line);
        callback();
      },
      final(callback) {
        if (partial) push(partial);
        partial = '';
        resolveEnded();
        callback();
      },
    });
    const start = (pod: Json) => {
      if (followed || stopped) return;
      const statuses: Json[] = pod.status?.containerStatuses ?? [];
      if (!statuses.some((s) => s?.state?.running || s?.state?.terminated)) return;
      followed = pod.metadata?.name;
      const container = pod.spec?.containers?.[0]?.name;
      k.log
        .log(
          namespace,
          followed!,
          container,
          sink,
          (err: unknown) => {
            if (err) logger.debug({ err: String(err) }, 'kaniko build log stream ended with an error');
            if (!sink.writableEnded) sink.end();
            resolveEnded();
          },
          { follow: true },
        )
        .then(
          (c) => {
            logController = c;
            if (stopped) c.abort();
          },
          () => resolveEnded(),
        );
    };
    let logger: Logger = config.logger;
    k.watch
      .watch(
        `/api/v1/namespaces/${namespace}/pods`,
        { labelSelector: `${BUILD_JOB_LABEL}=${jobName}` },
        (type: string, pod: Json) => {
          if (type === 'ADDED' || type === 'MODIFIED') start(pod);
        },
        () => undefined,
      )
      .then(
        (c) => {
          watchController = c;
          if (stopped || followed) c.abort();
        },
        () => undefined,
      );
    return {
      setLogger(l: Logger) {
        logger = l;
      },
      get pod() {
        return followed;
      },
      tail: () => [...lines],
      get any() {
        return followed !== undefined;
      },
      async stop(waitMs: number) {
        stopped = true;
        watchController?.abort();
        if (followed && waitMs > 0) {
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([ended, new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
          clearTimeout(timer);
        }
        logController?.abort();
      },
    };
  }

  async function build(request: BuildRequest, ctx: CallContext): Promise<KanikoBuildResult> {
    const logger: Logger = childLogger(ctx.logger ?? config.logger, { builder: 'kaniko', runId: request.runId });
    const signal = ctx.signal;
    const onLine = (line: string) => request.onProgress?.(line);
    throwIfAborted(signal, 'the build');

    const named = specImage(request.spec);
    if (named) return { imageUri: named, cached: true, tag: splitImageUri(named).tag ?? 'latest', tagScheme: 'none' };
    if (!request.contextDir) {
      throw contextError({
        code: 'no_context',
        message: `job ${request.spec.job ?? request.runId} needs an image built, but its code was not provided (no build context directory)`,
        hint: 'give the job an image (`docker.docker_image`), or let the queue source download its code',
      });
    }
    const registry = request.registry ?? config.registry;
    const repository = config.destination ?? registry?.uri.replace(/^https?:\/\//, '').replace(/\/+$/, '');
    if (!repository) {
      throw new LaunchError({
        code: 'build.no_destination',
        stage: 'build',
        category: 'BuildFailed',
        message: 'the kaniko builder pushes every image, but neither builder.destination nor a registry uri is set',
        hint: 'set builder.destination (or registry.uri) to the repository kaniko should push to',
      });
    }
    validateRepository(repository, config.destination ? 'builder.destination' : `the ${registry!.name} registry uri`);

    const plan = await resolveBuildContext(contextInputFromRequest(request, config));
    for (const warning of plan.warnings) {
      logger.warn({ warning }, `build context: ${warning}`);
      onLine(`warning: ${warning}`);
    }
    const onSkip = (path: string, kind: string) => logger.warn({ path, kind }, `build context: ${kind} ${path} is not archived`);

    const scratch = await mkdtemp(join(tmpdir(), 'launch-kaniko-'));
    const cleanups: Array<{ what: string; run: () => Promise<unknown> }> = [
      { what: 'the packed context', run: () => rm(scratch, { recursive: true, force: true }) },
    ];
    try {
      // One pass: pack to a file while hashing; the digest gives the tag.
      const archive = join(scratch, 'context.tgz');
      const packed = packContext(plan, { gzipLevel: config.gzipLevel, signal, onSkip });
      try {
        await pipeline(packed.stream, createWriteStream(archive), { signal });
      } catch (error) {
        if (signal?.aborted) throw abortedError('packing the build context', error);
        throw LaunchError.isInstance(error)
          ? error
          : contextError({
              code: 'pack_failed',
              message: `packing the build context of ${request.contextDir} failed: ${(error as Error).message}`,
              cause: error,
            });
      }
      const digest = await packed.digest;
      const wandbSource = wandbJobSourceString(request.spec.job);
      const tag = wandbSource
        ? wandbTag(wandbSource, plan.dockerfile)
        : contentTag({ dockerfile: plan.dockerfile, contextDigest: digest.sha256, buildArgs: config.buildArgs });
      const imageUri = `${repository}:${tag}`;
      const result = {
        imageUri,
        tag,
        tagScheme: wandbSource ? ('wandb' as const) : ('content' as const),
        dockerfileSource: plan.dockerfileSource,
        contextDigest: digest.sha256,
        entryPoint: plan.entryPoint,
      };

      if (registry && !config.dockerConfigSecret) {
        let exists: boolean;
        try {
          exists = await registry.imageExists(imageUri, ctx);
        } catch (error) {
          throw toLaunchError(error, { code: 'build.registry_check', stage: 'build' });
        }
        if (exists) {
          logger.info({ imageUri }, 'image already in the registry: build skipped');
          onLine(`image ${imageUri} already exists in the registry: build skipped`);
          return { ...result, cached: true };
        }
      }
      throwIfAborted(signal, 'the build');

      const k = await client();
      const jobName = kanikoJobName(config.buildJobName, request.runId);
      const store: ContextStore = pvcStore ?? request.contextStore ?? config.contextStore!;
      const key = `${request.runId.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[.-]+/, '') || 'context'}.tgz`;
      const { uri: contextUri } = await store.upload(archive, key, ctx);
      cleanups.push({ what: `the uploaded context ${contextUri}`, run: async () => store.delete?.(contextUri, { logger }) });
      throwIfAborted(signal, 'the build');

      const { mounts, configMaps } = await credentials(jobName, repository, registry, contextUri, ctx);
      const manifest = buildKanikoJob({
        name: jobName,
        namespace,
        kanikoConfig: config.kanikoConfig,
        image: config.kanikoImage,
        context: contextUri,
        dockerfile: plan.dockerfilePath,
        destination: imageUri,
        repository,
        buildArgs: config.buildArgs,
        serviceAccountName: config.serviceAccountName,
        activeDeadlineSeconds: config.buildTimeoutSeconds,
        credentials: mounts,
      });
      manifest.spec.template.metadata.labels[BUILD_JOB_LABEL] = manifest.metadata.name;
      const jobNamespace: string = manifest.metadata.namespace;
      const name: string = manifest.metadata.name;
      if (jobNamespace !== namespace) {
        throw new LaunchError({
          code: 'builder.invalid_kaniko_config',
          stage: 'build',
          category: 'BuildFailed',
          message: `builder.kaniko-config metadata.namespace "${jobNamespace}" differs from the builder's namespace "${namespace}"`,
          hint: 'set the kaniko builder namespace instead of metadata.namespace in kaniko-config',
        });
      }

      for (const cm of configMaps) {
        cleanups.push({
          what: `ConfigMap ${cm.metadata.name}`,
          run: () =>
            k.core
              .deleteNamespacedConfigMap({ name: cm.metadata.name, namespace })
              .catch((e: unknown) => (statusCode(e) === 404 ? undefined : Promise.reject(e))),
        });
        try {
          await k.core.createNamespacedConfigMap({ namespace, body: cm });
        } catch (error) {
          throw kubeFailure(error, `create the ConfigMap ${cm.metadata.name}`, namespace);
        }
      }
      const follower = followLog(k, name, onLine);
      follower.setLogger(logger);
      cleanups.push({ what: 'the build log stream', run: () => follower.stop(0) });
      cleanups.push({
        what: `Job ${name}`,
        run: () =>
          k.batch
            .deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background' })
            .catch((e: unknown) => (statusCode(e) === 404 ? undefined : Promise.reject(e))),
      });
      try {
        await k.batch.createNamespacedJob({ namespace, body: manifest });
      } catch (error) {
        throw kubeFailure(error, `create the build Job ${name}`, namespace);
      }
      logger.info({ imageUri, job: `${namespace}/${name}`, context: contextUri }, 'kaniko build started');
      onLine(`kaniko build Job ${namespace}/${name} started for ${imageUri}`);

      let outcomeOf: Awaited<ReturnType<typeof waitForJob>>;
      try {
        outcomeOf = await waitForJob(k, name, Date.now() + 3 * config.buildTimeoutSeconds * 1000, signal).catch((error: unknown) => {
          throw signal?.aborted ? abortedError('the kaniko build', error) : error;
        });
      } finally {
        await follower.stop(signal?.aborted ? 0 : 10_000);
      }
      const { job, outcome } = outcomeOf;
      if (outcome.state === 'failed') {
        const read = follower.any ? { pod: follower.pod, lines: follower.tail() } : await podLog(k, job, config.tailLines);
        if (!follower.any) for (const line of read.lines) onLine(line);
        const { pod, lines } = read;
        throw new LaunchError({
          code: 'build.failed',
          stage: 'build',
          category: 'BuildFailed',
          message: `kaniko build of ${imageUri} failed (Job ${namespace}/${name}: ${outcome.reason ?? 'Failed'}${outcome.message ? `: ${outcome.message}` : ''})\n--- last ${lines.length} lines of build output ---\n${lines.join('\n')}`,
          hint: `see the whole log with: kubectl logs -n ${namespace} ${pod ?? `job/${name}`} (the Job is removed after the build)`,
        });
      }
      if (!follower.any) for (const line of (await podLog(k, job, undefined)).lines) onLine(line);
      logger.info({ imageUri }, 'image built');
      return { ...result, cached: false, job: `${namespace}/${name}` };
    } finally {
      // Cleanup runs without the signal: a cancelled build still leaves nothing behind.
      for (const step of cleanups.reverse()) {
        await step
          .run()
          .catch((error: unknown) =>
            logger.warn({ err: error instanceof Error ? error.message : String(error) }, `kaniko cleanup: removing ${step.what} failed`),
          );
      }
    }
  }

  return {
    specificationVersion: 'v1',
    name: 'kaniko',
    async verify(ctx: CallContext) {
      const store = pvcStore ?? config.contextStore!;
      await store.verify(ctx);
      await client();
    },
    build: (request, ctx) =>
      build(request, ctx).catch((error: unknown) => {
        throw LaunchError.isInstance(error) ? error : toLaunchError(error, { code: 'build.failed', stage: 'build' });
      }),
  };
}
