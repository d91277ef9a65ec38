export { createWandbJobResolver } from './resolver.js';
export type { WandbJobResolver, WandbJobResolverOptions } from './resolver.js';
export { parseJobName, parseJobJson, checkEntryPoint } from './job-spec.js';
export type { JobName, WandbJobJson } from './job-spec.js';
