import { join } from 'node:path';
import { LaunchError, type AgentConfig, type JobResolver, type Logger, type Redactor } from '@launch/core';
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
  const cacheMaxBytes = jobCacheMaxBytes(o.env);
  const { createWandbJobResolver } = await import('@launch/wandb');
  return createWandbJobResolver({
    cacheDir: join(o.stateDir, 'jobs'),
    ...(cacheMaxBytes !== undefined ? { cacheMaxBytes } : {}),
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

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  kb: 1e3,
  kib: 1024,
  m: 1e6,
  mb: 1e6,
  mib: 1024 ** 2,
  g: 1e9,
  gb: 1e9,
  gib: 1024 ** 3,
  t: 1e12,
  tb: 1e12,
  tib: 1024 ** 4,
};

/**
 * `LAUNCH_JOB_CACHE_MAX`: the size past which the job cache (`<state dir>/jobs`) evicts the least recently used code
 * nothing holds, as bytes or with a unit (`500MiB`, `20GB`). Unset: the resolver's default (10 GiB). A value that is
 * not a size is a config error (exit 2), not ignored.
 */
export function jobCacheMaxBytes(env: Record<string, string | undefined>): number | undefined {
  const raw = env.LAUNCH_JOB_CACHE_MAX?.trim();
  if (!raw) return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(raw);
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  const bytes = m && unit !== undefined ? Math.floor(Number(m[1]) * unit) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new LaunchError({
      code: 'config.job_cache',
      message: `LAUNCH_JOB_CACHE_MAX: expected a size such as 20GiB or 500MB (or a number of bytes), found ${JSON.stringify(raw)}`,
      hint: 'unset it for the default of 10 GiB',
    });
  }
  return bytes;
}
