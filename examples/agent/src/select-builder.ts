import { homedir as osHomedir } from 'node:os';
import {
  DEFAULT_BUILD_JOB_NAME,
  DEFAULT_KANIKO_IMAGE,
  LaunchError,
  type AgentConfig,
  type Builder,
  type ContextStore,
  type Logger,
  type Registry,
} from '@launch/core';
import { createDockerBuilder, createKanikoBuilder, createNoopBuilder } from '@launch/builders';
import { describeEngine, dockerEngineAddress, pingDockerEngine, type DockerEngineAddress, type EngineProbe } from './docker-engine.js';
import { describeRegistryPlan, registryCloud, registryPlan, selectRegistry } from './select-registry.js';
import { contextStorePlan, createContextStore, describeContextStore, type ContextStorePlan } from './select-context-store.js';
import { configuredCloud, createEnvironmentLoader, describeEnvironment } from './select-environment.js';
import { kubernetesAvailable } from './select-runners.js';

/** How the builder is decided: by `builder.type`, or (no builder block) by whether an engine answers. */
export interface BuildPlan {
  type: 'docker' | 'kaniko' | 'noop' | 'auto';
  engine: DockerEngineAddress;
  /** Kaniko only: where build contexts go. */
  contextStore?: ContextStorePlan;
  /** Configured keys the chosen builder does not use, each a line that says so. */
  warnings: string[];
}

/** Kaniko runs build Jobs in the Kubernetes runner's cluster: without a kube config there is none. */
function refuseKanikoWithoutCluster(): LaunchError {
  return new LaunchError({
    code: 'config.builder_no_cluster',
    message:
      'builder.type is kaniko, but there is no Kubernetes cluster to run build Jobs in: no kube config ($KUBECONFIG, ~/.kube/config) and not in a pod (KUBERNETES_SERVICE_HOST)',
    hint: "set KUBECONFIG to the cluster's kube config (the one the Kubernetes runner uses), run the agent in the cluster, or use builder.type docker",
  });
}

/** Kaniko needs somewhere to put build contexts (core's config check says so too; this covers callers that skip it). */
function refuseKanikoWithoutStore(): LaunchError {
  return new LaunchError({
    code: 'config.builder_no_context_store',
    message: 'builder.type is kaniko, but there is no build context store: no builder.build-context-store and no WANDB_LAUNCH_KANIKO_PVC_NAME',
    hint: "set builder.build-context-store (s3://…, gs://… or https://<account>.blob.core.windows.net/<container>) or WANDB_LAUNCH_KANIKO_PVC_NAME (the chart's kanikoPvcName)",
  });
}

/** Keys only kaniko reads (W&B's docker and noop builders ignore them without a word). */
const KANIKO_KEYS = ['build-context-store', 'secret-name', 'secret-key', 'kaniko-config'] as const;

/**
 * Checks `builder.*` as W&B's `loader.builder_from_config` does, and names every configured key the
 * chosen builder will not use. `builder.type: kaniko` needs a kube config (`$KUBECONFIG`,
 * `~/.kube/config`, or an in-cluster service account) and a context store; without either it throws
 * a config error (exit 2).
 */
export function planBuildSetup(config: AgentConfig, env: Record<string, string | undefined>, homedir: string = osHomedir()): BuildPlan {
  const b = config.builder;
  const type = b?.type ?? 'auto';
  const engine = dockerEngineAddress(env);
  const warnings: string[] = [];
  let contextStore: ContextStorePlan | undefined;
  if (type === 'kaniko') {
    if (!kubernetesAvailable(env, homedir)) throw refuseKanikoWithoutCluster();
    contextStore = contextStorePlan(config, env);
    if (!contextStore) throw refuseKanikoWithoutStore();
    if (b?.platform) warnings.push("builder.platform is not used: the kaniko builder builds for the cluster's platform");
  }
  const builderName = type === 'auto' ? 'the docker builder' : `the ${type} builder`;
  if (b && type !== 'kaniko') {
    for (const key of KANIKO_KEYS) {
      if (b[key] !== undefined) warnings.push(`builder.${key} is used only by kaniko builds: ${builderName} ignores it`);
    }
    if (b['build-job-name'] !== undefined && b['build-job-name'] !== DEFAULT_BUILD_JOB_NAME)
      warnings.push(`builder.build-job-name is used only by kaniko builds: ${builderName} ignores it`);
    if (b['kaniko-image'] !== undefined && b['kaniko-image'] !== DEFAULT_KANIKO_IMAGE)
      warnings.push(`builder.kaniko-image is used only by kaniko builds: ${builderName} ignores it`);
  }
  if (type === 'noop') {
    if (b?.destination) warnings.push('builder.destination is not used: the noop builder builds and pushes nothing');
    if (b?.platform) warnings.push('builder.platform is not used: the noop builder builds nothing');
    if (config.registry)
      warnings.push('the registry block is not used: the noop builder checks and pushes no images, and the runners take the image a job names');
  } else if (b?.destination && config.registry && config.registry.type !== 'local') {
    // W&B: the destination replaces the registry block inside the builder; its runners use the block
    // for Kubernetes pull secrets only, which ours take from the cluster instead.
    warnings.push('the registry block is not used: builder.destination decides where images are pushed (as in W&B)');
  }
  const cloud = configuredCloud(config);
  if (cloud) {
    const usedByRegistry = type !== 'noop' && registryCloud(registryPlan(config)) === cloud;
    const usedByStore = contextStore !== undefined && contextStore.kind !== 'pvc' && contextStore.cloud === cloud;
    if (!usedByRegistry && !usedByStore) {
      warnings.push(`environment (${cloud}) is not used: neither the registry nor a kaniko build context store is on ${cloud}`);
    }
  }
  return { type, engine, ...(contextStore ? { contextStore } : {}), warnings };
}

export interface BuilderSelection {
  config: AgentConfig;
  env: Record<string, string | undefined>;
  logger: Logger;
  /** Home directory where `~/.kube/config` is looked for (kaniko). Default `os.homedir()`. */
  homedir?: string;
  /** The engine's answer, when the caller already pinged it. */
  probe?: EngineProbe;
}

export interface SelectedBuilder {
  builder: Builder;
  /** Where images are checked and pushed, if anywhere (the builder already holds it). */
  registry?: Registry;
  /** Where kaniko build contexts go (kaniko only). */
  contextStore?: ContextStore;
  /** What was chosen and why, and every configured key that is not used: print each at start-up. */
  lines: string[];
  engine: DockerEngineAddress;
  probe?: EngineProbe;
}

/**
 * The builder for jobs that need an image, chosen as W&B's agent chooses: `builder.type: docker` →
 * the docker builder on the engine at `$DOCKER_HOST` (else /var/run/docker.sock); `kaniko` → the
 * kaniko builder, running build Jobs in the cluster of the kube config (as the Kubernetes runner
 * finds it) with the context store of {@link contextStorePlan}; `noop` → the no-op builder (jobs
 * must name their image); no builder block → docker when the engine answers `GET /_ping` within a few
 * seconds, else noop. The registry comes from `builder.destination` / `registry.*`
 * ({@link selectRegistry}); cloud packages are loaded only for the cloud a registry, a store or the
 * environment block names.
 */
/**
 * For `config check`: the kaniko context store made as `run` makes it (its cloud package loaded, its URI
 * parsed, its cloud environment's settings checked; no request is sent), so a store `run` refuses is an
 * error here too. Undefined when there is nothing to check or it is fine; else the error line.
 */
export async function checkContextStore(config: AgentConfig, env: Record<string, string | undefined>, homedir?: string): Promise<string | undefined> {
  let plan: ReturnType<typeof planBuildSetup>;
  try {
    plan = planBuildSetup(config, env, homedir);
  } catch {
    return undefined; // describeBuildSetup reports it
  }
  if (plan.type !== 'kaniko' || !plan.contextStore || plan.contextStore.kind === 'pvc') return undefined;
  try {
    await createContextStore(plan.contextStore, createEnvironmentLoader(config, env));
    return undefined;
  } catch (error) {
    if (!LaunchError.isInstance(error)) throw error;
    return `error: ${error.message}${error.hint ? ` (hint: ${error.hint})` : ''}`;
  }
}

export async function selectBuildSetup(s: BuilderSelection): Promise<SelectedBuilder> {
  const plan = planBuildSetup(s.config, s.env, s.homedir);
  const where = describeEngine(plan.engine);
  const lines: string[] = [];
  const environments = createEnvironmentLoader(s.config, s.env);
  let probe = s.probe;
  let kind: 'docker' | 'kaniko' | 'noop';
  if (plan.type === 'noop') {
    kind = 'noop';
    lines.push('launch: builder noop (builder.type: noop): jobs must name their image');
  } else if (plan.type === 'kaniko') {
    kind = 'kaniko';
    // The engine is still asked once: the local-container runner is offered only when it answers.
    probe ??= await pingDockerEngine(plan.engine);
    lines.push(
      `launch: builder kaniko (builder.type: kaniko): build Jobs named ${s.config.builder?.['build-job-name'] ?? DEFAULT_BUILD_JOB_NAME}-<run id> with ${s.config.builder?.['kaniko-image'] ?? DEFAULT_KANIKO_IMAGE}, in the cluster of the kube config`,
    );
  } else {
    probe ??= await pingDockerEngine(plan.engine);
    if (plan.type === 'docker') {
      kind = 'docker';
      lines.push(`launch: builder docker (builder.type: docker) on the Docker engine at ${where}`);
      if (!probe.reachable) lines.push(`launch: warning: the Docker engine at ${where} does not answer (${probe.reason}): builds fail until it does`);
    } else if (probe.reachable) {
      kind = 'docker';
      lines.push(`launch: builder docker (no builder block, and the Docker engine at ${where} answers)`);
    } else {
      kind = 'noop';
      lines.push(`launch: builder noop (no builder block, and no Docker engine at ${where}: ${probe.reason}): jobs must name their image`);
    }
  }
  const cloud = configuredCloud(s.config);
  const selected = kind === 'noop' ? { lines: [] as string[], registry: undefined } : await selectRegistry({ config: s.config, env: s.env, environments });
  const contextStore = kind === 'kaniko' && plan.contextStore ? await createContextStore(plan.contextStore, environments) : undefined;
  if (cloud && !plan.warnings.some((w) => w.startsWith('environment ('))) lines.push(`launch: ${describeEnvironment(s.config)}`);
  for (const line of selected.lines) lines.push(`launch: ${line}`);
  if (kind === 'kaniko') lines.push(`launch: ${describeContextStore(plan.contextStore)}`);
  for (const warning of plan.warnings) lines.push(`launch: warning: ${warning}`);
  // debug: the caller prints the lines; this keeps them in the log file without doubling them on stderr.
  for (const line of lines) s.logger.debug({}, line.slice('launch: '.length));

  const b = s.config.builder;
  let builder: Builder;
  if (kind === 'docker') {
    builder = createDockerBuilder({
      dockerHost: plan.engine.dockerHost,
      ...(b?.destination ? { destination: b.destination } : {}),
      ...(selected.registry ? { registry: selected.registry } : {}),
      ...(b?.platform ? { platform: b.platform } : {}),
      logger: s.logger,
    });
  } else if (kind === 'kaniko') {
    builder = kanikoBuilder(s, plan.contextStore!, contextStore, selected.registry);
  } else {
    builder = createNoopBuilder();
  }
  return { builder, registry: selected.registry, ...(contextStore ? { contextStore } : {}), lines, engine: plan.engine, probe };
}

/** The kaniko builder from `builder.*` and W&B's kaniko environment variables; a bad value is a config error (exit 2). */
function kanikoBuilder(s: BuilderSelection, plan: ContextStorePlan, contextStore: ContextStore | undefined, registry: Registry | undefined): Builder {
  const b = s.config.builder!;
  const env = s.env;
  try {
    return createKanikoBuilder({
      ...(plan.kind === 'pvc' ? { pvcName: plan.pvcName, pvcMountPath: plan.mountPath } : { contextStore: contextStore! }),
      buildJobName: b['build-job-name'],
      kanikoImage: b['kaniko-image'],
      ...(b['kaniko-config'] ? { kanikoConfig: b['kaniko-config'] } : {}),
      ...(b.destination ? { destination: b.destination } : {}),
      ...(registry ? { registry } : {}),
      ...(b['secret-name'] ? { secretName: b['secret-name'] } : {}),
      ...(b['secret-key'] ? { secretKey: b['secret-key'] } : {}),
      // W&B's kaniko builder reads these from the agent's environment (the Helm chart sets them).
      ...(env.WANDB_LAUNCH_KANIKO_AUTH_SECRET ? { dockerConfigSecret: env.WANDB_LAUNCH_KANIKO_AUTH_SECRET } : {}),
      ...(env.WANDB_LAUNCH_SERVICE_ACCOUNT_NAME ? { serviceAccountName: env.WANDB_LAUNCH_SERVICE_ACCOUNT_NAME } : {}),
      // The chart's release-scoped azure-storage-access-key-<release> (W&B's fixed name otherwise).
      ...(env.LAUNCH_AZURE_STORAGE_KEY_SECRET ? { azureStorageKeySecret: env.LAUNCH_AZURE_STORAGE_KEY_SECRET } : {}),
      ...(s.config.environment?.type === 'aws' && s.config.environment.region ? { awsRegion: s.config.environment.region } : {}),
      logger: s.logger,
    });
  } catch (error) {
    const cause = LaunchError.isInstance(error) ? error : undefined;
    throw new LaunchError({
      code: 'config.builder',
      message: `builder (kaniko) cannot be used: ${error instanceof Error ? error.message : String(error)}`,
      hint: cause?.hint ?? 'fix the builder block in launch-config.yaml',
      cause: error,
    });
  }
}

/**
 * What `config check` says about building, without starting anything or loading a cloud SDK: the
 * environment, the builder that will be used (or the rule that decides it), the registry and where
 * its credentials come from, the kaniko context store, and every configured key that is not used. A
 * refusal (kaniko without a cluster or store, an unusable uri) is a line starting with `error:`;
 * {@link planBuildSetup} throws the same as a config error.
 */
export function describeBuildSetup(config: AgentConfig, env: Record<string, string | undefined>, homedir: string = osHomedir()): string[] {
  try {
    const plan = planBuildSetup(config, env, homedir);
    const where = describeEngine(plan.engine);
    const lines = [
      describeEnvironment(config),
      plan.type === 'docker'
        ? `builder: docker (builder.type) on the Docker engine at ${where}`
        : plan.type === 'noop'
          ? 'builder: noop (builder.type): jobs must name their image'
          : plan.type === 'kaniko'
            ? `builder: kaniko (builder.type): build Jobs ${config.builder?.['build-job-name'] ?? DEFAULT_BUILD_JOB_NAME}-<run id> with ${config.builder?.['kaniko-image'] ?? DEFAULT_KANIKO_IMAGE} in the cluster of the kube config${config.builder?.['kaniko-config'] ? ', merged with builder.kaniko-config' : ''}${config.builder?.['secret-name'] ? `; registry credentials from Secret ${config.builder['secret-name']} key ${config.builder['secret-key']}` : ''}`
            : `builder: docker if the Docker engine at ${where} answers at start-up, else noop (no builder block)`,
    ];
    if (plan.type !== 'noop') {
      if (config.builder?.platform && plan.type !== 'kaniko') lines.push(`platform: ${config.builder.platform} (builder.platform)`);
      lines.push(...describeRegistryPlan(config, env));
    }
    if (plan.type === 'kaniko') lines.push(describeContextStore(plan.contextStore));
    return [...lines, ...plan.warnings.map((w) => `warning: ${w}`)];
  } catch (error) {
    if (!LaunchError.isInstance(error)) throw error;
    return [`error: ${error.message}${error.hint ? ` (hint: ${error.hint})` : ''}`];
  }
}
