/**
 * Helpers the `@launch/*` packages share and embedders do not need: validation messages, the run
 * plan, template rendering, W&B's run environment, config cross-checks. No semver promise: any
 * release may change them.
 *
 * @internal
 * @packageDocumentation
 */
export * from './validation.js';
export { SCHEDULER_URI, isSchedulerSpec, specImage } from './spec.js';
export { fillMacros, macroVars, wandbRunEnv, chunkedEnv, readChunkedEnv, MAX_ENV_VALUE_LENGTH, generateRunId } from './agent/index.js';
export {
  crossIssues,
  findPlaceholder,
  isHelmValues,
  HELM_VALUES_KEYS,
  checkImageRepository,
  isBuildContextStoreUri,
  BUILD_CONTEXT_STORE_PATTERN,
  renderAgentConfigJsonSchema,
  type CrossCheckOptions,
  type ImageRepository,
  type RegistryHostKind,
} from './config/index.js';
export * from './plan-run.js';
export { contextArchiveSize } from './context-archive.js';
export {
  variableType,
  describeExpected,
  checkTemplateValue,
  declarationIssues,
  parseTemplateVariables,
  schemaKeyHint,
  findPlaceholders,
  renderTemplate,
  unfilledPlaceholderIssues,
  resolveTemplateValues,
  type PlaceholderUse,
} from './queue/template-vars.js';
