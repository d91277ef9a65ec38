export { parseDockerIgnore, emptyDockerIgnore, type DockerIgnore } from './ignore.js';
export { walkLayout, type ContextLayout, type WalkEntry, type WalkOptions } from './walk.js';
export { packContext, hashContext, type ContextDigest, type PackOptions, type PackedContext } from './pack.js';
export {
  generateDockerfile,
  pythonMajorMinor,
  pythonJsonList,
  validateAcceleratorImage,
  BOOTSTRAP_SCRIPT,
  WANDB_DOCKERFILE,
  type GeneratedDockerfileInput,
  type RequirementsSource,
} from './dockerfile.js';
export { resolveBuildContext, entryPointFile, type BuildContextInput, type BuildContextPlan, type DockerfileSource } from './resolve.js';
export {
  contentTag,
  wandbTag,
  wandbJobSourceString,
  dockerSafeName,
  validateRepository,
  validateTag,
  splitImageUri,
  CONTENT_TAG_LENGTH,
  WANDB_TAG_LENGTH,
  type ContentTagInput,
} from './tag.js';
