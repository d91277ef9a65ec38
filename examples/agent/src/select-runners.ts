import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { LaunchError, type AgentConfig, type Logger, type Runner } from '@launch/core';
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
  const codePvc = codePvcFromEnv(s.env);
  const codeInit = codeInitFromEnv(s.env);
  if (kubernetesAvailable(s.env, s.homedir)) {
    // Loaded only here: the Kubernetes client costs ~70 MiB of memory an agent without a cluster never needs.
    const { createKubernetesRunner } = await import('@launch/runners/kubernetes');
    runners.push(
      asConfigProblem(() =>
        createKubernetesRunner({
          // Adoption after a restart finds Jobs by this name, so it must outlive the process: the Helm
          // release name is stable across pod restarts, a pod's hostname is not.
          agentName: s.env.LAUNCH_AGENT_NAME ?? s.env.WANDB_RELEASE_NAME ?? hostname(),
          secureMode: s.config.secure_mode ?? false,
          ...(codePvc ? { codePvc } : {}),
          ...codeInit,
          logger: s.logger,
        }),
      ),
    );
  } else if (codePvc) {
    s.logger.warn({ claim: codePvc.name }, 'WANDB_LAUNCH_CODE_PVC_NAME is set but no kube config was found: the code PVC is unused');
  } else if (codeInit.codeInitImage) {
    s.logger.warn({ image: codeInit.codeInitImage }, 'LAUNCH_CODE_INIT_IMAGE is set but no kube config was found: it is unused');
  }
  return runners;
}

/** Options the runner refuses come from the user's environment (the code PVC's name): a config error, exit 2. */
function asConfigProblem<T>(make: () => T): T {
  try {
    return make();
  } catch (error) {
    if (!LaunchError.isInstance(error) || error.code !== 'runner.invalid_options') throw error;
    throw new LaunchError({
      code: 'config.kubernetes',
      message: error.message,
      hint: error.hint ?? 'check WANDB_LAUNCH_CODE_PVC_NAME, WANDB_LAUNCH_CODE_PVC_MOUNT_PATH and LAUNCH_CODE_INIT_IMAGE',
      cause: error,
    });
  }
}

/**
 * The code init container for base-image jobs without a builder when no code PVC is set (W&B's emptyDir mode):
 * `LAUNCH_CODE_INIT_IMAGE`, an image with this binary (it runs `launch-agent fetch-code`). An agent allowed to fetch
 * `file://` git remotes (`LAUNCH_ALLOW_FILE_GIT_REMOTES=1`) lets the init container do so too.
 */
export function codeInitFromEnv(env: Record<string, string | undefined>): { codeInitImage?: string; codeInitEnv?: Record<string, string> } {
  const image = env.LAUNCH_CODE_INIT_IMAGE || undefined;
  if (!image) return {};
  return { codeInitImage: image, ...(env.LAUNCH_ALLOW_FILE_GIT_REMOTES === '1' ? { codeInitEnv: { LAUNCH_ALLOW_FILE_GIT_REMOTES: '1' } } : {}) };
}

/**
 * W&B's code PVC for base-image jobs without a builder (`WANDB_LAUNCH_CODE_PVC_NAME`, and where the agent has it
 * mounted, `WANDB_LAUNCH_CODE_PVC_MOUNT_PATH`): both or neither. W&B falls back to its init container when one is
 * missing; a lone variable is refused here rather than silently ignored (`LAUNCH_CODE_INIT_IMAGE` chooses the init
 * container).
 */
export function codePvcFromEnv(env: Record<string, string | undefined>): { name: string; mountPath: string } | undefined {
  const name = env.WANDB_LAUNCH_CODE_PVC_NAME || undefined;
  const mountPath = env.WANDB_LAUNCH_CODE_PVC_MOUNT_PATH || undefined;
  if (!name && !mountPath) return undefined;
  if (!name || !mountPath) {
    const [set, unset] = name
      ? ['WANDB_LAUNCH_CODE_PVC_NAME', 'WANDB_LAUNCH_CODE_PVC_MOUNT_PATH']
      : ['WANDB_LAUNCH_CODE_PVC_MOUNT_PATH', 'WANDB_LAUNCH_CODE_PVC_NAME'];
    throw new LaunchError({
      code: 'config.code_pvc',
      message: `${set} is set but ${unset} is not`,
      hint: 'set both (the PVC holding job code, and where it is mounted in the agent) or neither',
    });
  }
  if (!isAbsolute(mountPath)) {
    throw new LaunchError({
      code: 'config.code_pvc',
      message: `WANDB_LAUNCH_CODE_PVC_MOUNT_PATH: expected an absolute directory (where the agent has the code PVC mounted), found ${JSON.stringify(mountPath)}`,
      hint: 'set it to the mount path of the PVC in the agent, e.g. /mnt/launch-code',
    });
  }
  return { name, mountPath };
}
