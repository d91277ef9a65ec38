/**
 * Health, readiness and Prometheus metrics for a Launch agent: `startHealthServer()` serves
 * `/healthz`, `/readyz` and `/metrics`; `createLaunchMetrics()` makes the metrics (and instruments
 * the queue source) when the caller needs them before the agent exists.
 */
export { startHealthServer, type HealthServer } from './server.js';
export { createLaunchMetrics, errorPlace, type AgentObservation, type LaunchMetrics, type LaunchMetricsOptions } from './metrics.js';
export { createHealthProbe, type HealthProbe, type HealthProbeOptions, type HealthReport } from './probe.js';
export { healthServerOptionsSchema, parseHealthServerOptions, type HealthServerOptions, type ObservedAgent } from './options.js';
export type { PendingPop } from './instrument-source.js';
