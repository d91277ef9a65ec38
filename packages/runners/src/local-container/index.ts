/**
 * The local-container runner: W&B's `local-container` resource on a Docker Engine (dockerode, loaded lazily).
 */
export { createLocalContainerRunner, type LocalContainerRunner } from './runner.js';
export { localContainerRunnerOptionsSchema, type LocalContainerRunnerOptions } from './options.js';
export { parseContainerResourceArgs, parseEnvFile, SUPPORTED_RESOURCE_ARGS, type ContainerSettings } from './resource-args.js';
export { containerName, LABEL as LOCAL_CONTAINER_LABELS } from './labels.js';
export { createContainerOrphanGuard, type ContainerOrphanGuard } from './orphan-guard.js';
