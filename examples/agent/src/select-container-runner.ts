import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Logger, Runner } from '@launch/core';
import { createLocalContainerRunner } from '@launch/runners/local-container';
import { describeEngine, dockerEngineAddress, pingDockerEngine, type EngineProbe } from './docker-engine.js';

export interface ContainerRunnerSelection {
  env: Record<string, string | undefined>;
  stateDir: string;
  killGracePeriodMs?: number;
  logger: Logger;
  /** The engine's answer, when the caller already pinged it (the builder selection does). */
  probe?: EngineProbe;
}

/**
 * The local-container runner (`resource: local-container` and `local`, W&B's Docker runner) when a
 * Docker engine answers at `$DOCKER_HOST` or /var/run/docker.sock, else undefined. Put it before the
 * local-process runner: both name `local`, and the first runner that names a resource gets it, so a
 * `local` job runs in a container whenever there is an engine, as in W&B.
 *
 * With `orphanGuard` no container outlives an agent killed outright; the agent name (for the
 * containers' label, and so for adoption after a restart) follows the Kubernetes runner's rule, so
 * it is the same across restarts. Logs go where the local-process runner puts them.
 */
export async function containerRunner(s: ContainerRunnerSelection): Promise<Runner | undefined> {
  const engine = dockerEngineAddress(s.env);
  const probe = s.probe ?? (await pingDockerEngine(engine));
  if (!probe.reachable) {
    s.logger.warn(
      { reason: probe.reason },
      `no Docker engine at ${describeEngine(engine)}: resource local runs as a local process, local-container is not offered`,
    );
    return undefined;
  }
  return createLocalContainerRunner({
    logDir: join(s.stateDir, 'logs'),
    dockerHost: engine.dockerHost,
    ...(s.killGracePeriodMs === undefined ? {} : { killGracePeriodMs: s.killGracePeriodMs }),
    orphanGuard: true,
    agentName: s.env.LAUNCH_AGENT_NAME ?? s.env.WANDB_RELEASE_NAME ?? hostname(),
    logger: s.logger,
  });
}
