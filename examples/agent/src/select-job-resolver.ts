import { join } from 'node:path';
import type { AgentConfig, JobResolver, Logger, Redactor } from '@launch/core';
import { resolveWandbSettings } from '@launch/wandb/settings';
import type { SourceKind } from './select-source.js';

export interface SelectJobResolverOptions {
  kind: SourceKind;
  config: AgentConfig;
  origins?: Record<string, string>;
  env: Record<string, string | undefined>;
  homedir: string;
  stateDir: string;
  logger: Logger;
  redactor: Redactor;
}

/**
 * The W&B job resolver (`@launch/wandb`), which reads an item's `job` and fetches its code into
 * `<state dir>/jobs`: always with the W&B source, and with the embedded queue when a W&B API key is at hand
 * (config, WANDB_API_KEY, ~/.netrc), so a local item can name a W&B job too. Undefined otherwise: such an
 * item then fails saying the agent cannot fetch W&B jobs. The W&B client loads only when one is made.
 */
export async function selectJobResolver(o: SelectJobResolverOptions): Promise<(JobResolver & { close?(): Promise<void> }) | undefined> {
  if (o.kind !== 'wandb') {
    const settings = resolveWandbSettings({
      config: { api_key: o.config.api_key ?? null, base_url: o.config.base_url ?? null },
      env: o.env,
      homedir: o.homedir,
    });
    if (!settings.apiKey) return undefined;
  }
  const { createWandbJobResolver } = await import('@launch/wandb');
  return createWandbJobResolver({
    cacheDir: join(o.stateDir, 'jobs'),
    // A key that came from WANDB_API_KEY is left for the resolver to find, so messages name its origin.
    ...(o.config.api_key && o.origins?.['api_key'] !== 'env' ? { apiKey: o.config.api_key } : {}),
    ...(o.config.base_url ? { baseUrl: o.config.base_url } : {}),
    env: o.env,
    homedir: o.homedir,
    logger: o.logger,
    redactor: o.redactor,
    // Tests and local mirrors serve git over file://; W&B's agent fetches only https, ssh and git@ remotes.
    ...(o.env.LAUNCH_ALLOW_FILE_GIT_REMOTES === '1' ? { allowFileRemotes: true } : {}),
  });
}
