/**
 * @launch/wandb: the W&B Launch API as a queue source for `createAgent`, an enqueue client, and
 * the settings rules W&B users know (API key from config, `WANDB_API_KEY` or `~/.netrc`; base URL
 * from config or `WANDB_BASE_URL`; custom CA bundles).
 *
 * @packageDocumentation
 */
export { createWandbQueueSource, LAUNCH_PROJECT, DEFAULT_WANDB_POLL_INTERVAL_MS } from './source.js';
export type { WandbQueueSourceOptions } from './source.js';
export { createWandbClient, PUSH_ID_KEY } from './client.js';
export type { WandbClient, WandbClientOptions, RunQueueInfo, RunQueueItemInfo, QueueRef, LaunchAgentInfo, PoppedItem, PushResult } from './client.js';
export { OPERATION_POLICY, retryRuleFor } from './policy.js';
export type { OperationPolicy, RetryRule, OperationName } from './policy.js';
export { createWandbEnqueueClient, enqueueToWandb } from './enqueue.js';
export type { WandbEnqueueClient, WandbEnqueueOptions, WandbEnqueueRequest, WandbEnqueueResult } from './enqueue.js';
export { resolveWandbSettings, describeKeySource, normalizeBaseUrl, DEFAULT_WANDB_BASE_URL } from './settings.js';
export type { WandbSettings, WandbSettingsInput, KeySource } from './settings.js';
export { shouldUseWandb, chooseSource } from './select.js';
export type { SourceChoice, SourceChoiceInput } from './select.js';
export { parseNetrc, netrcEntryFor } from './netrc.js';
export type { NetrcEntry } from './netrc.js';
export { readExtraCas, createWandbDispatcher, CA_BUNDLE_ENV } from './tls.js';
export type { CaBundleOptions } from './tls.js';
export { backoffDelay, parseRetryAfter, isRetryableStatus } from './retry.js';
export type { RetryOptions } from './retry.js';
export { createWandbJobResolver, parseJobName, parseJobJson, checkEntryPoint } from './jobs/index.js';
export type { WandbJobResolver, WandbJobResolverOptions, JobName, WandbJobJson } from './jobs/index.js';
