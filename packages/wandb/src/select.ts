import type { WandbSettings } from './settings.js';

export type SourceChoice = 'wandb' | 'embedded';

export interface SourceChoiceInput {
  /** An explicit choice (`--source`, config `source`) wins. */
  source?: SourceChoice | null;
  /** Resolved W&B settings (see `resolveWandbSettings`). */
  settings: Pick<WandbSettings, 'entity' | 'apiKey' | 'baseUrlSource'>;
}

/**
 * Rule for picking the queue source: W&B when asked for explicitly, or when an entity is named and
 * either an API key (config, `WANDB_API_KEY` or `~/.netrc`) or an explicit base URL is at hand; the
 * embedded queue otherwise.
 */
export function chooseSource(input: SourceChoiceInput): { choice: SourceChoice; reason: string } {
  if (input.source) return { choice: input.source, reason: `source ${input.source} was asked for` };
  const { entity, apiKey, baseUrlSource } = input.settings;
  if (!entity) return { choice: 'embedded', reason: 'no W&B entity is configured' };
  if (apiKey) return { choice: 'wandb', reason: `entity ${entity} is configured and a W&B API key is available` };
  if (baseUrlSource !== 'default') return { choice: 'wandb', reason: `entity ${entity} and a W&B base URL are configured` };
  return { choice: 'embedded', reason: `entity ${entity} is configured but no W&B API key or base URL is available` };
}

/** True when {@link chooseSource} picks W&B. */
export function shouldUseWandb(input: SourceChoiceInput): boolean {
  return chooseSource(input).choice === 'wandb';
}
