import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { AgentConfig, Logger, Runner } from '@launch/core';
import { createLocalProcessRunner } from '@launch/runners/local-process';
import type { EngineProbe } from './docker-engine.js';
import { containerRunner } from './select-container-runner.js';

export interface RunnerSelection {
  config: AgentConfig;
  env: Record<string, string | undefined>;
  homedir: string;
  stateDir: string;
  killGracePeriodMs?: number;
  logger: Logger;
  /** The Docker engine's answer to the start-up ping (from selectBuildSetup), so it is asked once. */
  dockerProbe?: EngineProbe;
}

/** Where a kube config can come from: `$KUBECONFIG`, `~/.kube/config`, or the pod's service account. */
export function kubernetesAvailable(env: Record<string, string | undefined>, homedir: string): boolean {
  if (env.KUBECONFIG && env.KUBECONFIG.split(':').some((p) => p && existsSync(p))) return true;
  if (existsSync(join(homedir, '.kube', 'config'))) return true;
  return Boolean(env.KUBERNETES_SERVICE_HOST);
}

/**
 * The runners the binary offers: local processes always (with the orphan guard on); Kubernetes (Jobs, Volcano, custom resources)
 * when a kube config or an in-cluster service account is there. Jobs naming `resource: kubernetes` on a
 * machine without one fail with "no runner handles resource" rather than at every start-up.
 */
export async function selectRunners(s: RunnerSelection): Promise<Runner[]> {
  // First: the local-container runner also names `local`, and the first runner naming a resource gets it.
  const container = await containerRunner({ env: s.env, stateDir: s.stateDir, killGracePeriodMs: s.killGracePeriodMs, logger: s.logger, probe: s.dockerProbe });
  const runners: Runner[] = [
    ...(container ? [container] : []),
    // orphanGuard: local jobs die with the agent even under kill -9 (a watchdog process kills their groups).
    createLocalProcessRunner({ logDir: join(s.stateDir, 'logs'), killGracePeriodMs: s.killGracePeriodMs, orphanGuard: true, logger: s.logger }),
  ];
  if (kubernetesAvailable(s.env, s.homedir)) {
    // Loaded only here: the Kubernetes client costs ~70 MiB of memory an agent without a cluster never needs.
    const { createKubernetesRunner } = await import('@launch/runners/kubernetes');
    runners.push(
      createKubernetesRunner({
        // Adoption after a restart finds Jobs by this name, so it must outlive the process: the Helm
        // release name is stable across pod restarts, a pod's hostname is not.
        agentName: s.env.LAUNCH_AGENT_NAME ?? s.env.WANDB_RELEASE_NAME ?? hostname(),
        secureMode: s.config.secure_mode ?? false,
        logger: s.logger,
      }),
    );
  }
  return runners;
}
