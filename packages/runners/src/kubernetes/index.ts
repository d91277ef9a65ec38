/**
 * The Kubernetes runner: W&B's Job semantics, Volcano and custom resources, shared watches, diagnosis, adoption.
 */
export { createKubernetesRunner, type KubernetesRunner } from './runner.js';
export { kubernetesRunnerOptionsSchema, type KubernetesRunnerOptions } from './options.js';
export { validateKubernetesResourceArgs, findKubernetesIssues, type ValidateKubernetesResourceArgsOptions } from './secure.js';
export { buildJobManifest, buildServiceManifest, resolveNamespace, FORCED_SECURITY_CONTEXT, type BuildManifestInput } from './manifest.js';
export { diagnosePod } from './diagnose.js';
export { customState, jobTerminalState, podState } from './state.js';
export { LABEL as KUBERNETES_LABELS, ANNOTATION as KUBERNETES_ANNOTATIONS } from './labels.js';
