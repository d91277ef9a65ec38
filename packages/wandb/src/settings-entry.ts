/**
 * `@launch/wandb/settings`: W&B's settings and source-selection rules without the GraphQL client, so a
 * program can decide whether it needs W&B before loading it.
 */
export { resolveWandbSettings, describeKeySource, normalizeBaseUrl, DEFAULT_WANDB_BASE_URL } from './settings.js';
export type { WandbSettings, WandbSettingsInput, KeySource } from './settings.js';
export { shouldUseWandb, chooseSource } from './select.js';
export type { SourceChoice, SourceChoiceInput } from './select.js';
export { parseNetrc, netrcEntryFor } from './netrc.js';
export type { NetrcEntry } from './netrc.js';
