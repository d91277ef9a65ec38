/**
 * @launch/core: the contracts every backend implements, the embedded durable queue, the agent
 * config, and `createAgent()`.
 *
 * Helpers the other `@launch/*` packages share (validation messages, the run plan, template
 * rendering, W&B's run environment) are in `@launch/core/internal`, which carries no semver promise.
 *
 * @packageDocumentation
 */
export * from './errors.js';
export * from './logger.js';
export { REDACTED, Redactor, isSecretEnvName, type RedactorScope } from './redact.js';
export {
  WANDB_RESOURCES,
  overridesSchema,
  launchSpecSchema,
  parseLaunchSpec,
  normalizeLaunchSpec,
  PRIORITIES,
  PRIORITY_VALUE,
  type LaunchSpec,
  type SpecWarning,
  type Priority,
} from './spec.js';
export * from './status.js';
export type * from './contracts/index.js';
export type * from './agent/types.js';
export { createAgent } from './agent/index.js';
export {
  agentConfigSchema,
  builderConfigSchema,
  registryConfigSchema,
  environmentConfigSchema,
  BUILDER_TYPES,
  REGISTRY_TYPES,
  ENVIRONMENT_TYPES,
  PLATFORMS,
  SOURCES,
  DEFAULT_BUILD_JOB_NAME,
  DEFAULT_KANIKO_IMAGE,
  parseAgentConfig,
  maxFromConfig,
  redactAgentConfig,
  loadAgentConfig,
  agentConfigWarnings,
  defaultConfigPath,
  DEFAULT_CONFIG_PATH,
  CONFIG_ENV_VARS,
  agentConfigJsonSchema,
  type AgentConfig,
  type AgentConfigInput,
  type BuilderConfig,
  type RegistryConfig,
  type EnvironmentConfig,
  type AgentConfigFlags,
  type LoadAgentConfigOptions,
  type LoadedAgentConfig,
  type ConfigOrigin,
} from './config/index.js';
export * from './queue/embedded/index.js';
export { queueConfigSchema, parseQueueConfig, mergeQueueConfig, type QueueConfig, type MergedSpec } from './queue/queue-config.js';
export {
  TEMPLATE_VARIABLE_TYPES,
  TEMPLATE_VARIABLE_NAME,
  templateVariableSchema,
  type TemplateVariableType,
  type TemplateValue,
  type TemplateVariableDeclaration,
} from './queue/template-vars.js';
