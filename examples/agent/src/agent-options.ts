import { maxFromConfig, type AgentConfig, type AgentOptions } from '@launch/core';

/** AgentOptions counts "no limit" as -1; the config says -1 too, maxFromConfig says Infinity. */
function limit(n: number | undefined): number | undefined {
  if (n === undefined) return undefined;
  const max = maxFromConfig(n);
  return Number.isFinite(max) ? max : -1;
}

/** The config keys the agent itself uses, in the units it wants (seconds stay seconds, poll_interval → ms). */
export function agentOptionsFromConfig(
  config: AgentConfig,
): Pick<
  AgentOptions,
  'entity' | 'maxJobs' | 'maxSchedulers' | 'stoppedRunTimeout' | 'startTimeout' | 'pollIntervalMs' | 'maxResumeCount' | 'apiKey' | 'baseUrl' | 'secureMode'
> {
  return {
    entity: config.entity ?? undefined,
    maxJobs: limit(config.max_jobs),
    maxSchedulers: limit(config.max_schedulers),
    stoppedRunTimeout: config.stopped_run_timeout,
    startTimeout: config.start_timeout,
    pollIntervalMs: config.poll_interval === undefined ? undefined : config.poll_interval * 1000,
    maxResumeCount: config.max_resume_count,
    apiKey: config.api_key ?? undefined,
    baseUrl: config.base_url ?? undefined,
    secureMode: config.secure_mode,
  };
}

/** Top-level keys sent to the queue at registration; the agent strips secrets too, but do not hand them over. */
export function registrationConfig(config: AgentConfig): Record<string, unknown> {
  const { api_key: _secret, ...rest } = config as AgentConfig & { api_key?: unknown };
  return rest as Record<string, unknown>;
}
