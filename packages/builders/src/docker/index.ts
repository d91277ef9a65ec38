export { createDockerBuilder, contextInputFromRequest, type DockerBuilder, type DockerBuildResult, type BuildJobSource } from './builder.js';
export { dockerBuilderOptionsSchema, parseDockerBuilderOptions, engineAddress, contextCompression, type DockerBuilderOptions } from './options.js';
export { followProgress, type ProgressFollower } from './progress.js';
