/**
 * The agent config (`launch-config.yaml`): a strict schema of W&B's keys plus ours, a loader with
 * precedence defaults < file < environment < flags, and the JSON Schema for editors.
 */
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
  type AgentConfig,
  type AgentConfigInput,
  type BuilderConfig,
  type RegistryConfig,
  type EnvironmentConfig,
} from './schema.js';
export { parseAgentConfig, maxFromConfig, crossIssues, type CrossCheckOptions } from './parse.js';
export { findPlaceholder } from './placeholders.js';
export { isHelmValues, HELM_VALUES_KEYS } from './helm-values.js';
export { redactAgentConfig } from './redact-config.js';
export {
  loadAgentConfig,
  agentConfigWarnings,
  defaultConfigPath,
  DEFAULT_CONFIG_PATH,
  CONFIG_ENV_VARS,
  type AgentConfigFlags,
  type LoadAgentConfigOptions,
  type LoadedAgentConfig,
  type ConfigOrigin,
} from './load.js';
export { checkImageRepository, isBuildContextStoreUri, BUILD_CONTEXT_STORE_PATTERN, type ImageRepository, type RegistryHostKind } from './image-repository.js';
export { agentConfigJsonSchema, renderAgentConfigJsonSchema } from './json-schema.js';
