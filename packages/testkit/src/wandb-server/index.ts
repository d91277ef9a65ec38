export { createWandbTestServer, DEFAULT_TEST_API_KEY } from './server.js';
export type { WandbTestServer, WandbTestServerOptions, RecordedRequest } from './server.js';
export type { FaultRule, FaultInjector } from './faults.js';
export type { QueueInit, UserInit, ItemRecord, AgentRecord, RunRecord, QueueRecord, TemplateVariable, WandbState } from './state.js';
export { wandbLaunchSchemaSDL } from './schema.js';
