import { LaunchError, LaunchValidationError, Redactor, silentLogger, zodIssues, type Logger } from '@launch/core';
import { GraphQLClient } from 'graphql-request';
import { z } from 'zod';
import { badResponse, toWandbError } from './errors.js';
import * as ops from './operations.js';
import { resolveRetry, type RetryOptions } from './retry.js';
import { DEFAULT_WANDB_BASE_URL, describeKeySource, normalizeBaseUrl, type KeySource } from './settings.js';
import { createWandbDispatcher } from './tls.js';
import { createRetryingFetch } from './transport.js';

export interface WandbClientOptions {
  /** The W&B API key (sent as HTTP basic auth, user `api`). */
  apiKey: string;
  /** Default https://api.wandb.ai. */
  baseUrl?: string;
  /** Where the key came from; named in error messages instead of the key. */
  keySource?: KeySource;
  /** Time limit of one HTTP attempt. Default 30 000 ms. */
  timeoutMs?: number;
  retry?: RetryOptions;
  /** A PEM file of extra CA certificates. `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE` and `NODE_EXTRA_CA_CERTS` in `env` are read too. */
  caCertFile?: string;
  /** Environment for CA bundle variables. Default `process.env`. */
  env?: Record<string, string | undefined>;
  logger?: Logger;
  /** A shared redactor; the key is added to it. */
  redactor?: Redactor;
}

const optionsSchema = z
  .object({
    baseUrl: z.string().min(1).optional(),
    keySource: z.enum(['config', 'env', 'netrc']).optional(),
    timeoutMs: z.number().int().positive().optional(),
    retry: z
      .object({
        maxAttempts: z.number().int().min(1).optional(),
        baseDelayMs: z.number().min(0).optional(),
        maxDelayMs: z.number().min(0).optional(),
        maxRetryAfterMs: z.number().min(0).optional(),
      })
      .strict()
      .optional(),
    caCertFile: z.string().min(1).optional(),
  })
  .passthrough();

export interface RunQueueInfo {
  id: string;
  name: string;
  createdBy: string | null;
  access: string | null;
}

export interface LaunchAgentInfo {
  id: string;
  name: string;
  stopPolling: boolean;
  agentStatus: string | null;
  hostname: string | null;
  runQueues: string[];
  heartbeatAt: string | null;
}

export interface PoppedItem {
  id: string;
  /** Parsed `runSpec`; the raw text when it is not JSON (the agent then fails the item with a clear message). */
  runSpec: unknown;
}

export interface PushResult {
  id: string;
  /** The spec as the server stored it (after merging the queue's template), when the server returns it. */
  runSpec: Record<string, unknown> | null;
}

/** Typed W&B Launch API calls with retries; every method throws a LaunchError naming its operation. */
export interface WandbClient {
  readonly baseUrl: string;
  viewer(): Promise<{ id: string; username: string | null; entity: string | null } | null>;
  entityIsTeam(entity: string): Promise<boolean>;
  projectRunQueues(entity: string, project: string): Promise<RunQueueInfo[]>;
  createRunQueue(entity: string, project: string, queueName: string, access?: 'PROJECT' | 'USER'): Promise<string>;
  createLaunchAgent(input: { entity: string; project: string; queueIds: string[]; hostname: string; agentConfig: unknown; version: string }): Promise<string>;
  launchAgent(agentId: string): Promise<LaunchAgentInfo | null>;
  updateLaunchAgent(agentId: string, status: string): Promise<void>;
  popFromRunQueue(input: { entity: string; project: string; queue: string; agentId?: string | null }): Promise<PoppedItem | null>;
  /** Returns false when the server refuses (already acknowledged, or the claim expired). */
  ackRunQueueItem(itemId: string, runName: string): Promise<boolean>;
  failRunQueueItem(itemId: string, failure: { message: string; stage: string; filePaths?: string[] }): Promise<boolean>;
  updateRunQueueItemWarning(itemId: string, warning: { message: string; stage: string; filePaths?: string[] }): Promise<boolean>;
  pushToRunQueueByName(input: {
    entity: string;
    project: string;
    queue: string;
    runSpec: Record<string, unknown>;
    priority?: number;
    templateVariableValues?: Record<string, unknown>;
  }): Promise<PushResult>;
  runStopped(input: { entity: string; project: string; runId: string }): Promise<boolean>;
  /** The run's state, or null when the server has no such run. */
  runState(input: { entity: string; project: string; runId: string }): Promise<string | null>;
  /** Stops retries in flight and closes connections. */
  close(): Promise<void>;
}

const id = z.union([z.string(), z.number()]).transform(String);

function parseSpec(raw: unknown): unknown {
  if (typeof raw !== 'string') return raw;
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/**
 * Creates the W&B GraphQL client: graphql-request over undici with keep-alive, a custom CA bundle
 * when configured, retries (network errors, 429 with `Retry-After`, 5xx) with backoff and jitter,
 * and errors that name the operation and never the key.
 */
export function createWandbClient(options: WandbClientOptions): WandbClient {
  if (typeof options?.apiKey !== 'string' || options.apiKey.trim() === '') {
    // The key itself is never echoed, not even a wrong one.
    throw new LaunchError({
      code: 'wandb.no_api_key',
      message: 'no W&B API key was given',
      hint: 'set WANDB_API_KEY, api_key in the agent config, or run `wandb login` (~/.netrc)',
    });
  }
  const checked = optionsSchema.safeParse(options);
  if (!checked.success) {
    throw new LaunchValidationError({ code: 'wandb.options_invalid', subject: 'W&B client options', issues: zodIssues(checked.error, options) });
  }
  const apiKey = options.apiKey.trim();
  const baseUrl = normalizeBaseUrl(options.baseUrl ?? DEFAULT_WANDB_BASE_URL, 'baseUrl');
  const logger = options.logger ?? silentLogger;
  const redactor = options.redactor ?? new Redactor();
  const basic = Buffer.from(`api:${apiKey}`).toString('base64');
  redactor.add(apiKey);
  redactor.add(basic);
  const keyOrigin = describeKeySource({ keySource: options.keySource });
  const closer = new AbortController();
  const dispatcher = createWandbDispatcher({ ...(options.caCertFile ? { caCertFile: options.caCertFile } : {}), env: options.env ?? process.env });
  const gql = new GraphQLClient(`${baseUrl}/graphql`, {
    fetch: createRetryingFetch({
      dispatcher,
      retry: resolveRetry(options.retry),
      timeoutMs: options.timeoutMs ?? 30_000,
      logger,
      redactor,
      closed: closer.signal,
    }),
    headers: { authorization: `Basic ${basic}`, 'user-agent': 'launch-agent (@launch/wandb)' },
  });

  async function call<S extends z.ZodTypeAny>(operation: string, document: string, variables: Record<string, unknown>, schema: S): Promise<z.output<S>> {
    let data: unknown;
    try {
      data = await gql.request({ document, variables });
    } catch (error) {
      throw toWandbError(error, { operation, baseUrl, keyOrigin, redactor });
    }
    const parsed = schema.safeParse(data);
    if (!parsed.success) {
      const issue = zodIssues(parsed.error, data)[0];
      throw badResponse(operation, issue ? `${issue.path || '(root)'}: ${issue.message}` : 'wrong shape');
    }
    return parsed.data;
  }

  const success = (field: string) => z.object({ [field]: z.object({ success: z.boolean().nullish() }).nullable() });

  return {
    baseUrl,

    async viewer() {
      const r = await call(
        'Viewer',
        ops.VIEWER,
        {},
        z.object({ viewer: z.object({ id, username: z.string().nullish(), entity: z.string().nullish() }).nullable() }),
      );
      return r.viewer ? { id: r.viewer.id, username: r.viewer.username ?? null, entity: r.viewer.entity ?? null } : null;
    },

    async entityIsTeam(entity) {
      const r = await call('EntityIsTeam', ops.ENTITY_IS_TEAM, { entity }, z.object({ entity: z.object({ isTeam: z.boolean() }).nullable() }));
      if (!r.entity) {
        throw new LaunchError({
          code: 'wandb.entity_not_found',
          message: `W&B entity ${entity} does not exist or this API key has no access to it`,
          hint: 'check `entity` in the agent config (or WANDB_ENTITY); it is a user or team name',
        });
      }
      return r.entity.isTeam;
    },

    async projectRunQueues(entity, project) {
      const r = await call(
        'ProjectRunQueues',
        ops.PROJECT_RUN_QUEUES,
        { entity, projectName: project },
        z.object({
          project: z
            .object({
              runQueues: z.array(z.object({ id, name: z.string(), createdBy: z.string().nullish(), access: z.string().nullish() })).nullish(),
            })
            .nullable(),
        }),
      );
      if (!r.project) {
        throw new LaunchError({
          code: 'wandb.project_not_found',
          message: `cannot read the run queues of ${entity}/${project}: the project does not exist or this API key has no access to it`,
          hint: 'check `entity` in the agent config and that the key belongs to a member of that entity',
        });
      }
      return (r.project.runQueues ?? []).map((q) => ({ id: q.id, name: q.name, createdBy: q.createdBy ?? null, access: q.access ?? null }));
    },

    async createRunQueue(entity, project, queueName, access = 'PROJECT') {
      const r = await call(
        'createRunQueue',
        ops.CREATE_RUN_QUEUE,
        { entity, project, queueName, access },
        z.object({ createRunQueue: z.object({ success: z.boolean().nullish(), queueID: id.nullish() }).nullable() }),
      );
      const queueId = r.createRunQueue?.queueID;
      if (!r.createRunQueue?.success || !queueId) {
        throw new LaunchError({ code: 'wandb.queue_create_failed', message: `W&B did not create run queue ${queueName} in ${entity}/${project}` });
      }
      return queueId;
    },

    async createLaunchAgent(input) {
      const r = await call(
        'createLaunchAgent',
        ops.CREATE_LAUNCH_AGENT,
        {
          entity: input.entity,
          project: input.project,
          queues: input.queueIds,
          hostname: input.hostname,
          agentConfig: JSON.stringify(input.agentConfig ?? {}),
          version: input.version,
        },
        z.object({ createLaunchAgent: z.object({ launchAgentId: id }) }),
      );
      return r.createLaunchAgent.launchAgentId;
    },

    async launchAgent(agentId) {
      const r = await call(
        'LaunchAgent',
        ops.LAUNCH_AGENT,
        { agentId },
        z.object({
          launchAgent: z
            .object({
              id,
              name: z.string().nullish(),
              runQueues: z.array(id).nullish(),
              hostname: z.string().nullish(),
              agentStatus: z.string().nullish(),
              stopPolling: z.boolean().nullish(),
              heartbeatAt: z.string().nullish(),
            })
            .nullable(),
        }),
      );
      const a = r.launchAgent;
      if (!a) return null;
      return {
        id: a.id,
        name: a.name ?? a.id,
        stopPolling: a.stopPolling === true,
        agentStatus: a.agentStatus ?? null,
        hostname: a.hostname ?? null,
        runQueues: a.runQueues ?? [],
        heartbeatAt: a.heartbeatAt ?? null,
      };
    },

    async updateLaunchAgent(agentId, status) {
      await call('updateLaunchAgent', ops.UPDATE_LAUNCH_AGENT, { agentId, agentStatus: status }, success('updateLaunchAgent'));
    },

    async popFromRunQueue(input) {
      const r = await call(
        'popFromRunQueue',
        ops.POP_FROM_RUN_QUEUE,
        { entity: input.entity, project: input.project, queueName: input.queue, launchAgentId: input.agentId ?? null },
        z.object({ popFromRunQueue: z.object({ runQueueItemId: id, runSpec: z.unknown() }).nullable() }),
      );
      const item = r.popFromRunQueue;
      return item ? { id: item.runQueueItemId, runSpec: parseSpec(item.runSpec) } : null;
    },

    async ackRunQueueItem(itemId, runName) {
      const r = await call(
        'ackRunQueueItem',
        ops.ACK_RUN_QUEUE_ITEM,
        { itemId, runId: runName },
        z.object({ ackRunQueueItem: z.object({ success: z.boolean().nullish() }).nullable() }),
      );
      return r.ackRunQueueItem?.success === true;
    },

    async failRunQueueItem(itemId, failure) {
      const r = await call(
        'failRunQueueItem',
        ops.FAIL_RUN_QUEUE_ITEM,
        { runQueueItemId: itemId, message: redactor.redact(failure.message), stage: failure.stage, filePaths: failure.filePaths ?? null },
        success('failRunQueueItem'),
      );
      return (r.failRunQueueItem as { success?: boolean | null } | null)?.success === true;
    },

    async updateRunQueueItemWarning(itemId, warning) {
      const r = await call(
        'updateRunQueueItemWarning',
        ops.UPDATE_RUN_QUEUE_ITEM_WARNING,
        { runQueueItemId: itemId, message: redactor.redact(warning.message), stage: warning.stage, filePaths: warning.filePaths ?? [] },
        success('updateRunQueueItemWarning'),
      );
      return (r.updateRunQueueItemWarning as { success?: boolean | null } | null)?.success === true;
    },

    async pushToRunQueueByName(input) {
      const r = await call(
        'pushToRunQueueByName',
        ops.PUSH_TO_RUN_QUEUE_BY_NAME,
        {
          entityName: input.entity,
          projectName: input.project,
          queueName: input.queue,
          runSpec: JSON.stringify(input.runSpec),
          priority: input.priority ?? null,
          templateVariableValues: input.templateVariableValues ? JSON.stringify(input.templateVariableValues) : null,
        },
        z.object({ pushToRunQueueByName: z.object({ runQueueItemId: id, runSpec: z.unknown() }).nullable() }),
      );
      const pushed = r.pushToRunQueueByName;
      if (!pushed) {
        throw new LaunchError({
          code: 'wandb.push_failed',
          message: `W&B did not add the run to queue ${input.queue} in ${input.entity}/${input.project}`,
          hint: 'check that the queue exists and that this key may push to it',
        });
      }
      const spec = parseSpec(pushed.runSpec);
      return { id: pushed.runQueueItemId, runSpec: spec && typeof spec === 'object' && !Array.isArray(spec) ? (spec as Record<string, unknown>) : null };
    },

    async runStopped(input) {
      const r = await call(
        'RunStoppedStatus',
        ops.RUN_STOPPED_STATUS,
        { projectName: input.project, entityName: input.entity, runId: input.runId },
        z.object({ project: z.object({ run: z.object({ stopped: z.boolean().nullish() }).nullable() }).nullable() }),
      );
      return r.project?.run?.stopped === true;
    },

    async runState(input) {
      const r = await call(
        'RunState',
        ops.RUN_STATE,
        { project: input.project, entity: input.entity, name: input.runId },
        z.object({ project: z.object({ run: z.object({ state: z.string().nullish() }).nullable() }).nullable() }),
      );
      return r.project?.run?.state ?? null;
    },

    async close() {
      closer.abort(new LaunchError({ code: 'wandb.closed', message: 'the W&B client was closed' }));
      await dispatcher.close().catch(() => undefined);
    },
  };
}
