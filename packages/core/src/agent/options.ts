import { LaunchError } from '../errors.js';
import { silentLogger } from '../logger.js';
import type { SpecificationVersion } from '../contracts/common.js';
import type { AgentOptions, Clock } from './types.js';

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** W&B's `_max_from_config`: -1 is no limit; other negatives are refused. */
function limit(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (v === -1 || v === Infinity) return Infinity;
  if (!Number.isInteger(v) || v < 0) {
    throw new LaunchError({
      code: 'agent.options',
      message: `${name} must be -1 (no limit) or a whole number >= 0, found ${String(v)}`,
    });
  }
  return v;
}

function seconds(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || Number.isNaN(v)) {
    throw new LaunchError({ code: 'agent.options', message: `${name} must be a number of seconds, found ${String(v)}` });
  }
  return v;
}

/** Contract versions this agent implements (see `SpecificationVersion`). */
const KNOWN_SPECIFICATION_VERSIONS: readonly string[] = ['v1'] satisfies readonly SpecificationVersion[];

/**
 * Refuses a backend written for a contract version this agent does not know, naming it: its calls could
 * mean something else than the agent expects (a field renamed, a promise changed).
 */
function checkSpecificationVersion(kind: string, backend: unknown): void {
  const b = (typeof backend === 'object' && backend !== null ? backend : {}) as { name?: unknown; specificationVersion?: unknown };
  const version = b.specificationVersion;
  if (typeof version === 'string' && KNOWN_SPECIFICATION_VERSIONS.includes(version)) return;
  const name = typeof b.name === 'string' && b.name !== '' ? `"${b.name.slice(0, 100)}"` : '(unnamed)';
  const found = typeof version === 'string' ? `"${version.slice(0, 100)}"` : version === undefined ? 'none' : typeof version;
  throw new LaunchError({
    code: 'agent.unsupported_backend',
    message: `${kind} ${name} implements contract specificationVersion ${found}; this agent knows ${KNOWN_SPECIFICATION_VERSIONS.map((v) => `"${v}"`).join(', ')}`,
    hint: `use a version of the ${kind} built for this @launch/core, or upgrade @launch/core`,
  });
}

export type ResolvedOptions = ReturnType<typeof resolveOptions>;

/** Checks the options once, at start-up, so a bad value fails with its name and not deep inside a job. */
export function resolveOptions(o: AgentOptions) {
  if (!o.source) throw new LaunchError({ code: 'agent.options', message: 'source is required (a QueueSource)' });
  if (!Array.isArray(o.queues) || o.queues.length === 0 || o.queues.some((q) => typeof q !== 'string' || q === '')) {
    throw new LaunchError({
      code: 'agent.options',
      message: 'queues must name at least one queue',
      hint: 'set `queues:` in launch-config.yaml or pass -q <queue>',
    });
  }
  if (!Array.isArray(o.runners) || o.runners.length === 0) {
    throw new LaunchError({ code: 'agent.options', message: 'runners must hold at least one Runner' });
  }
  checkSpecificationVersion('queue source', o.source);
  for (const runner of o.runners) checkSpecificationVersion('runner', runner);
  if (o.builder !== undefined) checkSpecificationVersion('builder', o.builder);
  if (o.registry !== undefined) checkSpecificationVersion('registry', o.registry);
  if (o.contextStore !== undefined) checkSpecificationVersion('context store', o.contextStore);
  if (o.jobResolver !== undefined) checkSpecificationVersion('job resolver', o.jobResolver);
  const pollIntervalMs = o.pollIntervalMs ?? o.source.capabilities.pollIntervalMs;
  if (!(pollIntervalMs > 0)) {
    throw new LaunchError({ code: 'agent.options', message: `pollIntervalMs must be > 0, found ${String(pollIntervalMs)}` });
  }
  if (o.redactor !== undefined && (typeof o.redactor !== 'object' || o.redactor === null || typeof o.redactor.scope !== 'function')) {
    throw new LaunchError({
      code: 'agent.options',
      message: `redactor must be a Redactor (from @launch/core), found ${o.redactor === null ? 'null' : typeof o.redactor}`,
    });
  }
  const monitorIntervalMs = o.monitorIntervalMs ?? 10_000;
  if (!(monitorIntervalMs > 0)) {
    throw new LaunchError({ code: 'agent.options', message: `monitorIntervalMs must be > 0, found ${String(monitorIntervalMs)}` });
  }
  return {
    source: o.source,
    queues: [...new Set(o.queues)],
    runners: o.runners,
    builder: o.builder,
    registry: o.registry,
    contextStore: o.contextStore,
    jobResolver: o.jobResolver,
    entity: o.entity,
    maxJobs: limit('max_jobs', o.maxJobs, 1),
    maxSchedulers: limit('max_schedulers', o.maxSchedulers, 1),
    stoppedRunTimeoutMs: seconds('stopped_run_timeout', o.stoppedRunTimeout, 60) * 1000,
    startTimeoutMs: seconds('start_timeout', o.startTimeout, 1800) * 1000,
    monitorIntervalMs,
    pollIntervalMs,
    defaultResource: o.defaultResource ?? 'local-process',
    env: o.env ?? process.env,
    apiKey: o.apiKey,
    baseUrl: o.baseUrl,
    maxResumeCount: o.maxResumeCount ?? 5,
    version: o.version ?? `launch@0.1.0`,
    hostname: o.hostname,
    config: o.config ?? {},
    logger: o.logger ?? silentLogger,
    redactor: o.redactor,
    clock: o.clock ?? realClock,
    filesDir: o.filesDir,
    secureMode: o.secureMode ?? false,
    requeueOnShutdown: o.requeueOnShutdown ?? true,
  };
}
