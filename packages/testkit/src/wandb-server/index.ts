export { createWandbTestServer, DEFAULT_TEST_API_KEY } from './server.js';
export type { WandbTestServer, WandbTestServerOptions, RecordedRequest } from './server.js';
export type { FaultRule, FaultInjector } from './faults.js';
export type { QueueInit, UserInit, ItemRecord, AgentRecord, RunRecord, QueueRecord, TemplateVariable, WandbState } from './state.js';
export { wandbLaunchSchemaSDL } from './schema.js';
export { createArtifactStore, manifestDigest } from './artifacts.js';
export type {
  ArtifactStore,
  ArtifactFileInit,
  PublishArtifactInit,
  ArtifactVersionRecord,
  ArtifactFileRecord,
  DownloadFault,
  RecordedDownload,
} from './artifacts.js';
export { artifactIdString } from './jobs.js';
export type { WandbJobJson, PublishJobInit, PublishCodeInit } from './jobs.js';
