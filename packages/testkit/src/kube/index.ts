/**
 * Kubernetes test server: kube-apiserver + job controller + scripted kubelet, in process, speaking the real REST and
 * watch protocol to `@kubernetes/client-node`.
 */
export { startKubeTestServer } from './server.js';
// Exported as KubeRecordedRequest: the W&B test server already exports a RecordedRequest from the kit's index.
export type { KubeTestServer, KubeTestServerOptions, RecordedRequest as KubeRecordedRequest, InjectedFault } from './server.js';
export type { KubeletStep, KubeletDefaults, KubeletMatch, ScriptedKubelet } from './kubelet.js';
export type { CustomResourceDefinition } from './resources.js';
export type { StatusBody, StatusCause } from './status.js';
export { createBuildStandIn, parseExecutorArgs, KANIKO_IMAGE_PATTERN, type BuildStandInOptions, type StandInBuild } from './build-stand-in.js';
export type { PodExecutor } from './kubelet.js';
