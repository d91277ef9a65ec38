import { createEmbeddedQueue, defaultStateDir, type AgentConfig, type EmbeddedQueue, type Logger, type QueueSource } from '@launch/core';
// Only the light settings rules load eagerly; the GraphQL client loads when W&B is chosen.
import { chooseSource, resolveWandbSettings } from '@launch/wandb/settings';
import { UsageError } from './usage.js';

export type SourceKind = 'wandb' | 'embedded';

/**
 * Which queue source serves the agent (`@launch/wandb`'s `chooseSource`, documented in docs/wandb.md):
 * W&B when asked for (`source: wandb`, `--source wandb`), or when the config names an entity and a W&B
 * API key (config, WANDB_API_KEY or ~/.netrc for the API host) or a base URL is at hand; the embedded
 * queue otherwise.
 */
export function chooseSourceKind(config: AgentConfig, env: Record<string, string | undefined>, origins?: Record<string, string>, homedir?: string): SourceKind {
  // The config schema defaults `source` to wandb; only a value someone wrote (file, env, flag) decides.
  const explicit = origins ? origins['source'] !== undefined && origins['source'] !== 'default' : false;
  const settings = resolveWandbSettings({
    config: { api_key: config.api_key ?? null, base_url: config.base_url ?? null, entity: config.entity ?? null },
    env,
    ...(homedir === undefined ? {} : { homedir }),
  });
  return chooseSource({ source: explicit ? config.source : undefined, settings }).choice;
}

export interface SelectedSource {
  kind: SourceKind;
  source: QueueSource;
  /** Set for the embedded queue: enqueue, list and stop requests go through it. */
  embedded?: EmbeddedQueue;
  /** Where the embedded queue and the runs' logs live. */
  stateDir: string;
}

export interface SelectSourceOptions {
  config: AgentConfig;
  /** Where each config value came from (`loadAgentConfig`'s origins). */
  origins?: Record<string, string>;
  env: Record<string, string | undefined>;
  homedir: string;
  logger: Logger;
  command: string;
}

/** The state directory: config (`state_dir`, `--state-dir`), then LAUNCH_STATE_DIR / XDG_DATA_HOME / ~/.local/share. */
export function stateDirFor(config: AgentConfig, env: Record<string, string | undefined>, home: string): string {
  return config.state_dir ?? defaultStateDir(env, home);
}

/** The seam where the W&B source plugs in; see `chooseSourceKind` for the rule. */
export async function selectSource(options: SelectSourceOptions): Promise<SelectedSource> {
  const { config, env, logger } = options;
  const stateDir = stateDirFor(config, env, options.homedir);
  const kind = chooseSourceKind(config, env, options.origins, options.homedir);
  if (kind === 'wandb') {
    const { createWandbQueueSource } = await import('@launch/wandb');
    const source: QueueSource = createWandbQueueSource({
      ...(config.entity ? { entity: config.entity } : {}),
      // A key that came from WANDB_API_KEY is left for the source to find, so messages name its origin.
      ...(config.api_key && options.origins?.['api_key'] !== 'env' ? { apiKey: config.api_key } : {}),
      ...(config.base_url ? { baseUrl: config.base_url } : {}),
      ...(config.poll_interval === undefined ? {} : { pollIntervalMs: config.poll_interval * 1000 }),
      env,
      homedir: options.homedir,
      logger,
    });
    return { kind, source, stateDir };
  }
  const embedded = createEmbeddedQueue({
    stateDir,
    pollIntervalMs: config.poll_interval === undefined ? undefined : config.poll_interval * 1000,
    leaseMs: leaseFromEnv(env, options.command),
    retainDone: retainDoneFromEnv(env, options.command),
    logger,
  });
  return { kind, source: embedded, embedded, stateDir };
}

/**
 * `LAUNCH_LEASE_MS`: how long a claim outlives its agent before the item returns to the queue
 * (default 30 s). Shorter means faster recovery after a crash, at the cost of more lease renewals.
 */
function leaseFromEnv(env: Record<string, string | undefined>, command: string): number | undefined {
  const raw = env.LAUNCH_LEASE_MS;
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < 100) {
    throw new UsageError(`LAUNCH_LEASE_MS must be a whole number of milliseconds >= 100, got "${raw}"`, command);
  }
  return Number(raw);
}

const AGE_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * `LAUNCH_RETAIN_DONE=ITEMS[,AGE]`: how many finished items the embedded queue keeps per queue for
 * `status` (default `10000,7d`). ITEMS is a whole number >= 1 or `all`; AGE is a number with a unit
 * (`90s`, `30m`, `12h`, `7d`) or `all`; `off` keeps every record.
 */
export function retainDoneFromEnv(env: Record<string, string | undefined>, command: string): false | { maxItems?: number; maxAgeMs?: number } | undefined {
  const raw = env.LAUNCH_RETAIN_DONE?.trim();
  if (raw === undefined || raw === '') return undefined;
  if (raw === 'off') return false;
  const bad = (why: string) => new UsageError(`LAUNCH_RETAIN_DONE must be ITEMS[,AGE] (e.g. 10000,7d; "all" for no limit) or off; ${why} in "${raw}"`, command);
  const [items, age, ...extra] = raw.split(',').map((p) => p.trim());
  if (extra.length > 0) throw bad('found more than two parts');
  const out: { maxItems?: number; maxAgeMs?: number } = {};
  if (items === 'all') out.maxItems = Infinity;
  else if (items && /^\d+$/.test(items) && Number(items) >= 1) out.maxItems = Number(items);
  else throw bad(`ITEMS "${items ?? ''}" is not a whole number >= 1`);
  if (age === 'all') out.maxAgeMs = Infinity;
  else if (age !== undefined) {
    const m = /^(\d+)(s|m|h|d)$/.exec(age);
    if (!m || Number(m[1]) < 1) throw bad(`AGE "${age}" is not a number >= 1 with a unit s, m, h or d`);
    out.maxAgeMs = Number(m[1]) * AGE_UNITS[m[2]!]!;
  }
  return out;
}
