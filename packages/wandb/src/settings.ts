import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LaunchError } from '@launch/core';
import { netrcEntryFor, parseNetrc } from './netrc.js';

/** W&B's public API. */
export const DEFAULT_WANDB_BASE_URL = 'https://api.wandb.ai';

export type KeySource = 'config' | 'env' | 'netrc';

export interface WandbSettingsInput {
  /** The agent config's W&B keys (`launch-config.yaml`). */
  config?: { api_key?: string | null; base_url?: string | null; entity?: string | null };
  env?: Record<string, string | undefined>;
  /** Home directory, for `~/.netrc`. */
  homedir?: string;
}

export interface WandbSettings {
  apiKey?: string;
  baseUrl: string;
  entity?: string;
  /** Where the key came from; error messages name it (never the key). */
  keySource: KeySource | undefined;
  /** Whether the base URL was set explicitly (config or `WANDB_BASE_URL`) or is the default. */
  baseUrlSource: 'config' | 'env' | 'default';
  /** The netrc file that was read, when the key came from one. */
  netrcPath?: string;
}

function nonEmpty(v: string | null | undefined): string | undefined {
  const t = v?.trim();
  return t ? t : undefined;
}

/** Normalises a base URL (no trailing slash, no `/graphql`), with a clear error when it is not an http(s) URL. */
export function normalizeBaseUrl(raw: string, origin: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new LaunchError({
      code: 'wandb.base_url_invalid',
      message: `${origin} is not a valid URL: ${JSON.stringify(raw)}`,
      hint: 'use the address of your W&B server, e.g. https://api.wandb.ai or https://wandb.example.com',
    });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new LaunchError({
      code: 'wandb.base_url_invalid',
      message: `${origin} must be an http(s) URL, found ${JSON.stringify(raw)}`,
    });
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '').replace(/\/graphql$/, '')}`;
}

/**
 * Where the W&B key, base URL and entity come from, as W&B users have them: the key from the
 * config's `api_key`, then `WANDB_API_KEY`, then `~/.netrc` (or `$NETRC`) for the API host; the
 * base URL from `base_url`, then `WANDB_BASE_URL`, then https://api.wandb.ai; the entity from
 * `entity`, then `WANDB_ENTITY`.
 */
export function resolveWandbSettings(input: WandbSettingsInput = {}): WandbSettings {
  const config = input.config ?? {};
  const env = input.env ?? {};
  const fromConfigUrl = nonEmpty(config.base_url);
  const fromEnvUrl = nonEmpty(env.WANDB_BASE_URL);
  const baseUrlSource = fromConfigUrl ? 'config' : fromEnvUrl ? 'env' : 'default';
  const baseUrl = normalizeBaseUrl(
    fromConfigUrl ?? fromEnvUrl ?? DEFAULT_WANDB_BASE_URL,
    fromConfigUrl ? 'base_url' : fromEnvUrl ? 'WANDB_BASE_URL' : 'the default base URL',
  );
  const entity = nonEmpty(config.entity) ?? nonEmpty(env.WANDB_ENTITY);
  const base: WandbSettings = { baseUrl, baseUrlSource, keySource: undefined, ...(entity ? { entity } : {}) };

  const configKey = nonEmpty(config.api_key);
  if (configKey) return { ...base, apiKey: configKey, keySource: 'config' };
  const envKey = nonEmpty(env.WANDB_API_KEY);
  if (envKey) return { ...base, apiKey: envKey, keySource: 'env' };

  const netrcPath = nonEmpty(env.NETRC) ?? (input.homedir ? join(input.homedir, '.netrc') : undefined);
  if (netrcPath) {
    let text: string | undefined;
    try {
      text = readFileSync(netrcPath, 'utf8');
    } catch {
      text = undefined; // No netrc is the common case, not an error.
    }
    if (text !== undefined) {
      const url = new URL(baseUrl);
      const entry = netrcEntryFor(parseNetrc(text), url.hostname, url.port);
      const key = nonEmpty(entry?.password);
      if (key) return { ...base, apiKey: key, keySource: 'netrc', netrcPath };
    }
  }
  return base;
}

/** Names a key's origin for messages, never the key itself. */
export function describeKeySource(settings: Pick<WandbSettings, 'keySource' | 'netrcPath'>): string {
  switch (settings.keySource) {
    case 'config':
      return 'api_key in the agent config';
    case 'env':
      return 'WANDB_API_KEY';
    case 'netrc':
      return settings.netrcPath ?? '~/.netrc';
    default:
      return 'the configured API key';
  }
}
