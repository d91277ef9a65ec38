import { randomUUID } from 'node:crypto';
import { LaunchError, LaunchValidationError, Redactor, silentLogger, type Logger } from '@launch/core';
import { zodIssues } from '@launch/core/internal';
import { GraphQLClient } from 'graphql-request';
import { z } from 'zod';
import { badResponse, toWandbError } from './errors.js';
import * as ops from './operations.js';
import { backoffDelay, resolveRetry, sleep, type RetryOptions } from './retry.js';
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

/** The `retry` option of the W&B clients (queue client, job resolver). */
export const retryOptionsSchema = z
  .object({
    maxAttempts: z.number().int().min(1).optional(),
    baseDelayMs: z.number().min(0).optional(),
    maxDelayMs: z.number().min(0).optional(),
    maxRetryAfterMs: z.number().min(0).optional(),
  })
  .strict();

const optionsSchema = z
  .object({
    baseUrl: z.string().min(1).optional(),
    keySource: z.enum(['config', 'env', 'netrc']).optional(),
    timeoutMs: z.number().int().positive().optional(),
    retry: retryOptionsSchema.optional(),
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

/** One item of a run queue, as `GetRunQueueItems` reads it. */
export interface RunQueueItemInfo {
  id: string;
  /** `PENDING`, `LEASED`, `CLAIMED`, `FAILED` … as W&B names them. */
  state: string;
  /** ISO time, when the server gives it. */
  createdAt: string | null;
  /** Parsed `runSpec` (without this client's push id); the raw value when it is not JSON. */
  runSpec: unknown;
  /** The run name the item was acknowledged with. */
  associatedRunId: string | null;
  /** The agent the item is leased to or was claimed by. */
  launchAgentId: string | null;
}

/** Where a queue item lives, for the read-backs that need it. */
export interface QueueRef {
  entity: string;
  project: string;
  queue: string;
}

/**
 * The key under which `pushToRunQueueByName` stores a fresh random id in every spec it pushes, so
 * that after a lost answer the client can tell by reading the queue whether the item was created.
 * It is stripped from the specs this client returns (push, pop, read-backs).
 */
export const PUSH_ID_KEY = '_launch_push_id';

export interface PushResult {
  id: string;
  /** The spec as the server stored it (after merging the queue's template), when the server returns it. */
  runSpec: Record<string, unknown> | null;
}

/**
 * Typed W&B Launch API calls with retries that cannot duplicate work (see policy.ts); every method
 * throws a LaunchError naming its operation, `wandb.outcome_unknown` when a mutation's effect
 * cannot be established.
 */
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
  /**
   * Returns false when the server refuses (acknowledged by someone else, or the claim expired).
   * With `where`, a refusal is checked by reading the item back: an item already CLAIMED with this
   * run name (a retry of an ack whose answer was lost) counts as acknowledged.
   */
  ackRunQueueItem(itemId: string, runName: string, where?: QueueRef): Promise<boolean>;
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
  /** Every item of a queue (all pages, up to 5 000 items; more fails with `wandb.read_back_incomplete`). */
  runQueueItems(where: QueueRef): Promise<RunQueueItemInfo[]>;
  runStopped(input: { entity: string; project: string; runId: string }): Promise<boolean>;
  /** The run's state, or null when the server has no such run. */
  runState(input: { entity: string; project: string; runId: string }): Promise<string | null>;
  /** Stops retries in flight and closes connections. */
  close(): Promise<void>;
}

const id = z.union([z.string(), z.number()]).transform(String);

/** A JSONString's value; the text itself when it is not JSON. */
function parseJson(raw: unknown): unknown {
  if (typeof raw !== 'string') return raw;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

/** Parsed `runSpec` without this client's push id; the raw text when it is not JSON (the agent then fails the item with a clear message). */
function parseSpec(raw: unknown): unknown {
  return withoutPushId(parseJson(raw));
}

function withoutPushId(spec: unknown): unknown {
  if (!spec || typeof spec !== 'object' || Array.isArray(spec) || !Object.hasOwn(spec, PUSH_ID_KEY)) return spec;
  const { [PUSH_ID_KEY]: _, ...rest } = spec as Record<string, unknown>;
  return rest;
}

function pushIdOf(spec: unknown): unknown {
  return spec && typeof spec === 'object' && !Array.isArray(spec) ? (spec as Record<string, unknown>)[PUSH_ID_KEY] : undefined;
}

/** JSON with object keys sorted, to compare specs whatever order a server keeps keys in. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.keys(value as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** A spec's content as pushed, leaving out what the server merges in from the queue (resource, resource_args) and the push id. */
function pushedContent(spec: unknown): string | undefined {
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) return undefined;
  const { resource: _r, resource_args: _a, [PUSH_ID_KEY]: _p, ...rest } = spec as Record<string, unknown>;
  return canonical(rest);
}

const isOutcomeUnknown = (error: unknown): error is LaunchError => LaunchError.isInstance(error) && error.code === 'wandb.outcome_unknown';

/** Read-back page size and limit. */
const ITEMS_PAGE = 100;
const ITEMS_MAX_PAGES = 50;
/** How long an item a pop returned is kept out of pop recoveries: well past W&B's lease of about a minute. */
const HANDED_OUT_MEMORY_MS = 10 * 60_000;
/** Items created this long before a push started still count as its possible result (client/server clock skew). */
const CLOCK_SKEW_MS = 10 * 60_000;

/**
 * Creates the W&B GraphQL client: graphql-request over undici with keep-alive, a custom CA bundle
 * when configured, retries with backoff and jitter by each operation's rule (`OPERATION_POLICY` in
 * policy.ts: queries on any failure, pushes and pops only when provably unsent, with read-backs
 * after an unknown outcome), and errors that name the operation and never the key.
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
  const retry = resolveRetry(options.retry);
  const gql = new GraphQLClient(`${baseUrl}/graphql`, {
    fetch: createRetryingFetch({
      dispatcher,
      retry,
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

  const itemsPage = z.object({
    project: z
      .object({
        runQueue: z
          .object({
            runQueueItems: z.object({
              pageInfo: z.object({ hasNextPage: z.boolean(), endCursor: z.string().nullish() }),
              edges: z.array(
                z.object({
                  node: z.object({
                    id,
                    state: z.string(),
                    createdAt: z.string().nullish(),
                    runSpec: z.unknown(),
                    associatedRunId: z.string().nullish(),
                    launchAgentId: id.nullish(),
                  }),
                }),
              ),
            }),
          })
          .nullable(),
      })
      .nullable(),
  });

  /** Every item of a queue, page by page; the raw runSpec is kept for the push-id check. */
  async function listItems(where: QueueRef): Promise<Array<RunQueueItemInfo & { pushId: unknown; content: string | undefined }>> {
    const out: Array<RunQueueItemInfo & { pushId: unknown; content: string | undefined }> = [];
    let after: string | null = null;
    for (let page = 0; page < ITEMS_MAX_PAGES; page++) {
      const r: z.output<typeof itemsPage> = await call(
        'GetRunQueueItems',
        ops.RUN_QUEUE_ITEMS,
        { projectName: where.project, entityName: where.entity, runQueue: where.queue, first: ITEMS_PAGE, after },
        itemsPage,
      );
      const conn = r.project?.runQueue?.runQueueItems;
      if (!conn) {
        throw new LaunchError({
          code: 'wandb.queue_not_found',
          message: `cannot read the items of run queue ${where.queue} in ${where.entity}/${where.project}: the queue does not exist or this API key has no access to it`,
        });
      }
      for (const { node } of conn.edges) {
        const spec = parseJson(node.runSpec);
        out.push({
          id: node.id,
          state: node.state,
          createdAt: node.createdAt ?? null,
          runSpec: withoutPushId(spec),
          associatedRunId: node.associatedRunId ?? null,
          launchAgentId: node.launchAgentId ?? null,
          pushId: pushIdOf(spec),
          content: pushedContent(spec),
        });
      }
      if (!conn.pageInfo.hasNextPage) return out;
      if (!conn.pageInfo.endCursor) throw badResponse('GetRunQueueItems', 'pageInfo.endCursor: missing although hasNextPage is true');
      after = conn.pageInfo.endCursor;
    }
    throw new LaunchError({
      code: 'wandb.read_back_incomplete',
      message: `run queue ${where.queue} in ${where.entity}/${where.project} holds more than ${ITEMS_PAGE * ITEMS_MAX_PAGES} items; the client reads no further`,
    });
  }

  async function projectRunQueues(entity: string, project: string): Promise<RunQueueInfo[]> {
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
  }

  // Pop bookkeeping for the recovery after a lost answer (see OPERATION_POLICY.popFromRunQueue).
  const popsInFlight = new Set<Promise<void>>();
  const handedOut = new Map<string, number>();
  let recovering: Promise<void> | null = null;

  const handOut = (itemId: string) => {
    const now = Date.now();
    handedOut.set(itemId, now);
    for (const [key, at] of handedOut) if (now - at > HANDED_OUT_MEMORY_MS) handedOut.delete(key);
  };

  async function recoverPop(input: { entity: string; project: string; queue: string; agentId?: string | null }, lost: LaunchError): Promise<PoppedItem> {
    const unknown = (detail: string, cause?: unknown) =>
      new LaunchError({
        code: 'wandb.outcome_unknown',
        message: redactor.redact(`${lost.message}; ${detail}`),
        hint: `nothing to do: an item leased by the lost answer goes back to queue ${input.queue} when its lease expires (about a minute on W&B) and is popped again then`,
        retryable: true,
        cause: cause ?? lost,
      });
    if (!input.agentId) throw unknown('without an agent id the client cannot find the item it may have leased');
    while (recovering) await recovering;
    let done!: () => void;
    recovering = new Promise<void>((resolve) => (done = resolve));
    try {
      // Every pop of this client still in flight must have handed out its item first, or it would be taken for the lost one.
      while (popsInFlight.size > 0) await Promise.all([...popsInFlight]);
      let items;
      try {
        items = await listItems(input);
      } catch (error) {
        throw unknown(`reading the queue back failed: ${LaunchError.isInstance(error) ? error.message : String(error)}`, error);
      }
      const orphan = items.find((i) => i.state === 'LEASED' && i.launchAgentId === input.agentId && !handedOut.has(i.id));
      if (!orphan) {
        throw unknown(
          `the read-back found no item leased to agent ${input.agentId} that this client does not hold already: nothing was leased, or a request still in flight on the server leases one later`,
        );
      }
      handOut(orphan.id);
      logger.warn(
        { operation: 'popFromRunQueue', itemId: orphan.id, queue: input.queue },
        `the answer to popFromRunQueue was lost; recovered item ${orphan.id} leased to this agent by reading queue ${input.queue} back`,
      );
      return { id: orphan.id, runSpec: orphan.runSpec };
    } finally {
      recovering = null;
      done();
    }
  }

  async function pushOnce(input: Parameters<WandbClient['pushToRunQueueByName']>[0], runSpec: Record<string, unknown>): Promise<PushResult> {
    const r = await call(
      'pushToRunQueueByName',
      ops.PUSH_TO_RUN_QUEUE_BY_NAME,
      {
        entityName: input.entity,
        projectName: input.project,
        queueName: input.queue,
        runSpec: JSON.stringify(runSpec),
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
  }

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

    projectRunQueues,

    async createRunQueue(entity, project, queueName, access = 'PROJECT') {
      const createOnce = async () => {
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
      };
      // After a lost answer, the queue list tells whether the create took effect; if not, it is sent once more.
      for (let round = 1; ; round++) {
        try {
          return await createOnce();
        } catch (error) {
          if (!isOutcomeUnknown(error) || round >= 2) throw error;
          const existing = (await projectRunQueues(entity, project)).find((q) => q.name === queueName);
          if (existing) return existing.id;
        }
      }
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
      while (recovering) await recovering;
      const attempt = call(
        'popFromRunQueue',
        ops.POP_FROM_RUN_QUEUE,
        { entity: input.entity, project: input.project, queueName: input.queue, launchAgentId: input.agentId ?? null },
        z.object({ popFromRunQueue: z.object({ runQueueItemId: id, runSpec: z.unknown() }).nullable() }),
      );
      const settled = attempt.then(
        (r) => {
          // Recorded before anyone awaiting the in-flight set resumes.
          if (r.popFromRunQueue) handOut(r.popFromRunQueue.runQueueItemId);
        },
        () => undefined,
      );
      popsInFlight.add(settled);
      void settled.then(() => popsInFlight.delete(settled));
      let r;
      try {
        r = await attempt;
      } catch (error) {
        if (!isOutcomeUnknown(error)) throw error;
        await settled;
        popsInFlight.delete(settled);
        return recoverPop(input, error);
      }
      const item = r.popFromRunQueue;
      return item ? { id: item.runQueueItemId, runSpec: parseSpec(item.runSpec) } : null;
    },

    async ackRunQueueItem(itemId, runName, where) {
      const r = await call(
        'ackRunQueueItem',
        ops.ACK_RUN_QUEUE_ITEM,
        { itemId, runId: runName },
        z.object({ ackRunQueueItem: z.object({ success: z.boolean().nullish() }).nullable() }),
      );
      if (r.ackRunQueueItem?.success === true) return true;
      if (!where) return false;
      // A retried ack whose first attempt took effect (and whose answer was lost) is refused: read the item back.
      const item = (await listItems(where).catch(() => [])).find((i) => i.id === itemId);
      const ours = item?.state === 'CLAIMED' && item.associatedRunId === runName;
      if (ours)
        logger.warn(
          { operation: 'ackRunQueueItem', itemId },
          `W&B refused a repeated ack of item ${itemId}, which is already claimed with run ${runName}: counted as acknowledged`,
        );
      return ours;
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
      // A fresh id for this push (a requeued spec carries its previous push's id: replaced here).
      const pushId = randomUUID();
      const runSpec = { ...input.runSpec, [PUSH_ID_KEY]: pushId };
      const content = pushedContent(runSpec);
      const startedAt = Date.now();
      const where = `queue ${input.queue} in ${input.entity}/${input.project}`;
      const unknown = (detail: string, cause: unknown) =>
        new LaunchError({
          code: 'wandb.outcome_unknown',
          message: redactor.redact(`cannot tell whether W&B added the run to ${where}: ${detail}`),
          hint: `before enqueueing again, look in ${where} (W&B UI → Launch) for an item whose spec has "${PUSH_ID_KEY}": "${pushId}"`,
          retryable: false,
          cause,
        });
      for (let round = 1; ; round++) {
        let lost: LaunchError;
        try {
          return await pushOnce(input, runSpec);
        } catch (error) {
          if (!isOutcomeUnknown(error)) throw error;
          lost = error;
        }
        await sleep(backoffDelay(round, retry), closer.signal);
        let items;
        try {
          items = await listItems(input);
        } catch (error) {
          throw unknown(`${lost.message}, and reading the queue back failed: ${LaunchError.isInstance(error) ? error.message : String(error)}`, error);
        }
        const created = items.find((i) => i.pushId === pushId);
        if (created) {
          logger.warn(
            { operation: 'pushToRunQueueByName', itemId: created.id, queue: input.queue },
            `the answer to pushToRunQueueByName was lost; the queue read back holds the pushed item ${created.id}`,
          );
          const spec = created.runSpec;
          return { id: created.id, runSpec: spec && typeof spec === 'object' && !Array.isArray(spec) ? (spec as Record<string, unknown>) : null };
        }
        const lookalikes = items.filter(
          (i) => i.pushId === undefined && i.content === content && (!i.createdAt || Date.parse(i.createdAt) >= startedAt - CLOCK_SKEW_MS),
        );
        if (lookalikes.length > 0) {
          throw unknown(
            `${lost.message}; the queue read back holds ${lookalikes.map((i) => i.id).join(', ')} with the same spec but no push id (a server that drops unknown spec keys, or the same job pushed by someone else)`,
            lost,
          );
        }
        if (round >= retry.maxAttempts) {
          throw unknown(`${lost.message}; the queue read back after attempt ${round} holds no item with this push, and the client gave up`, lost);
        }
        logger.warn(
          { operation: 'pushToRunQueueByName', attempt: round, queue: input.queue },
          `the answer to pushToRunQueueByName was lost and the queue read back holds no item with this push; pushing again`,
        );
      }
    },

    runQueueItems(where) {
      return listItems(where).then((items) => items.map(({ pushId: _p, content: _c, ...item }) => item));
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
