import { DEFAULT_BUILD_JOB_NAME, DEFAULT_KANIKO_IMAGE, LaunchError, type AgentConfig, type Builder, type Logger, type Registry } from '@launch/core';
import { createDockerBuilder, createNoopBuilder } from '@launch/builders';
import { describeEngine, dockerEngineAddress, pingDockerEngine, type DockerEngineAddress, type EngineProbe } from './docker-engine.js';
import { describeRegistryPlan, registryPlan, selectRegistry } from './select-registry.js';

/** How the builder is decided: by `builder.type`, or (no builder block) by whether an engine answers. */
export interface BuildPlan {
  type: 'docker' | 'noop' | 'auto';
  engine: DockerEngineAddress;
  /** Configured keys the chosen builder does not use, each a line that says so. */
  warnings: string[];
}

/** The kaniko builder is refused until it exists here: accepting the config would fail every build job later. */
function refuseKaniko(): LaunchError {
  return new LaunchError({
    code: 'config.builder_unavailable',
    message: 'builder.type is kaniko: the kaniko builder is not available yet in this agent',
    hint: 'use builder.type docker (on a machine with a Docker engine) or noop (jobs that name their image), or W&B\'s agent for kaniko builds',
  });
}

/** Keys only kaniko reads (W&B's docker and noop builders ignore them without a word). */
const KANIKO_KEYS = ['build-context-store', 'secret-name', 'secret-key', 'kaniko-config'] as const;

/**
 * Checks `builder.*` as W&B's `loader.builder_from_config` does, and names every configured key the
 * chosen builder will not use. Throws a config error (exit 2) for `builder.type: kaniko`.
 */
export function planBuildSetup(config: AgentConfig, env: Record<string, string | undefined>): BuildPlan {
  const b = config.builder;
  if (b?.type === 'kaniko') throw refuseKaniko();
  const type = b?.type ?? 'auto';
  const engine = dockerEngineAddress(env);
  const warnings: string[] = [];
  const builderName = type === 'auto' ? 'the docker builder' : `the ${type} builder`;
  if (b) {
    for (const key of KANIKO_KEYS) {
      if (b[key] !== undefined) warnings.push(`builder.${key} is used only by kaniko builds: ${builderName} ignores it`);
    }
    if (b['build-job-name'] !== undefined && b['build-job-name'] !== DEFAULT_BUILD_JOB_NAME) warnings.push(`builder.build-job-name is used only by kaniko builds: ${builderName} ignores it`);
    if (b['kaniko-image'] !== undefined && b['kaniko-image'] !== DEFAULT_KANIKO_IMAGE) warnings.push(`builder.kaniko-image is used only by kaniko builds: ${builderName} ignores it`);
  }
  if (type === 'noop') {
    if (b?.destination) warnings.push('builder.destination is not used: the noop builder builds and pushes nothing');
    if (b?.platform) warnings.push('builder.platform is not used: the noop builder builds nothing');
    if (config.registry) warnings.push('the registry block is not used: the noop builder checks and pushes no images, and the runners take the image a job names');
  } else if (b?.destination && config.registry && config.registry.type !== 'local') {
    // W&B: the destination replaces the registry block inside the builder; its runners use the block
    // for Kubernetes pull secrets only, which ours take from the cluster instead.
    warnings.push('the registry block is not used: builder.destination decides where images are pushed (as in W&B)');
  }
  const environment = config.environment;
  if (environment && environment.type !== 'local') {
    const plan = type === 'noop' ? undefined : registryPlan(config);
    if (environment.type !== 'aws') warnings.push(`environment.type ${environment.type} is not used: ${environment.type} is not available yet in this agent`);
    else if (plan?.type !== 'ecr') warnings.push('environment (aws) is not used: only an ECR registry needs it with the docker builder');
  }
  return { type, engine, warnings };
}

export interface BuilderSelection {
  config: AgentConfig;
  env: Record<string, string | undefined>;
  logger: Logger;
  /** The engine's answer, when the caller already pinged it. */
  probe?: EngineProbe;
}

export interface SelectedBuilder {
  builder: Builder;
  /** Where images are checked and pushed, if anywhere (the builder already holds it). */
  registry?: Registry;
  /** What was chosen and why, and every configured key that is not used: print each at start-up. */
  lines: string[];
  engine: DockerEngineAddress;
  probe?: EngineProbe;
}

/**
 * The builder for jobs that need an image, chosen as W&B's agent chooses: `builder.type: docker` →
 * the docker builder on the engine at `$DOCKER_HOST` (else /var/run/docker.sock); `noop` → the no-op
 * builder (jobs must name their image); no builder block → docker when the engine answers
 * `GET /_ping` within a few seconds, else noop. `kaniko` is refused (config error, exit 2) until it
 * exists here. The registry comes from `builder.destination` / `registry.*` ({@link selectRegistry}).
 */
export async function selectBuildSetup(s: BuilderSelection): Promise<SelectedBuilder> {
  const plan = planBuildSetup(s.config, s.env);
  const where = describeEngine(plan.engine);
  const lines: string[] = [];
  let probe = s.probe;
  let useDocker: boolean;
  if (plan.type === 'noop') {
    useDocker = false;
    lines.push('launch: builder noop (builder.type: noop): jobs must name their image');
  } else {
    probe ??= await pingDockerEngine(plan.engine);
    if (plan.type === 'docker') {
      useDocker = true;
      lines.push(`launch: builder docker (builder.type: docker) on the Docker engine at ${where}`);
      if (!probe.reachable) lines.push(`launch: warning: the Docker engine at ${where} does not answer (${probe.reason}): builds fail until it does`);
    } else if (probe.reachable) {
      useDocker = true;
      lines.push(`launch: builder docker (no builder block, and the Docker engine at ${where} answers)`);
    } else {
      useDocker = false;
      lines.push(`launch: builder noop (no builder block, and no Docker engine at ${where}: ${probe.reason}): jobs must name their image`);
    }
  }
  const selected = useDocker ? await selectRegistry({ config: s.config, env: s.env }) : { lines: [] as string[], registry: undefined };
  for (const line of selected.lines) lines.push(`launch: ${line}`);
  for (const warning of plan.warnings) lines.push(`launch: warning: ${warning}`);
  // debug: the caller prints the lines; this keeps them in the log file without doubling them on stderr.
  for (const line of lines) s.logger.debug({}, line.slice('launch: '.length));

  const builder = useDocker
    ? createDockerBuilder({
        dockerHost: plan.engine.dockerHost,
        ...(s.config.builder?.destination ? { destination: s.config.builder.destination } : {}),
        ...(selected.registry ? { registry: selected.registry } : {}),
        ...(s.config.builder?.platform ? { platform: s.config.builder.platform } : {}),
        logger: s.logger,
      })
    : createNoopBuilder();
  return { builder, registry: selected.registry, lines, engine: plan.engine, probe };
}

/**
 * What `config check` says about building, without starting anything: the builder that will be used
 * (or the rule that decides it), the registry and where its credentials come from, and every
 * configured key that is not used. A refusal (kaniko, ACR, GAR, an unusable uri) is a line starting
 * with `error:`; {@link planBuildSetup} throws the same as a config error.
 */
export function describeBuildSetup(config: AgentConfig, env: Record<string, string | undefined>): string[] {
  try {
    const plan = planBuildSetup(config, env);
    const where = describeEngine(plan.engine);
    const lines = [
      plan.type === 'docker'
        ? `builder: docker (builder.type) on the Docker engine at ${where}`
        : plan.type === 'noop'
          ? 'builder: noop (builder.type): jobs must name their image'
          : `builder: docker if the Docker engine at ${where} answers at start-up, else noop (no builder block)`,
    ];
    if (plan.type !== 'noop') {
      if (config.builder?.platform) lines.push(`platform: ${config.builder.platform} (builder.platform)`);
      lines.push(...describeRegistryPlan(config, env));
    }
    return [...lines, ...plan.warnings.map((w) => `warning: ${w}`)];
  } catch (error) {
    if (!LaunchError.isInstance(error)) throw error;
    return [`error: ${error.message}${error.hint ? ` (hint: ${error.hint})` : ''}`];
  }
}
