export { createKanikoBuilder, type KanikoBuilder, type KanikoBuildResult } from './builder.js';
export { kanikoBuilderOptionsSchema, parseKanikoBuilderOptions, type KanikoBuilderOptions } from './options.js';
export { buildKanikoJob, kanikoJobName, parseKanikoArgs, KANIKO_DEFAULTS, type KanikoJobInput, type KanikoCredentialMounts } from './job.js';
export { createPvcContextStore, type PvcContextStoreOptions } from './pvc-store.js';
