import { hostname as osHostname, homedir as osHomedir } from 'node:os';
import {
  LaunchError,
  PRIORITY_VALUE,
  Redactor,
  silentLogger,
  type AgentInfo,
  type AgentRegistration,
  type AgentStatus,
  type FailureReport,
  type QueueItem,
  type QueueSource,
  type RunRef,
  type WarningReport,
} from '@launch/core';
import { closest } from '@launch/core/internal';
import { createWandbClient, type WandbClient, type WandbClientOptions } from './client.js';
import { describeKeySource, resolveWandbSettings } from './settings.js';

/** W&B keeps launch queues in this project of the entity. */
export const LAUNCH_PROJECT = 'model-registry';
/** W&B's `AGENT_POLLING_INTERVAL`. */
export const DEFAULT_WANDB_POLL_INTERVAL_MS = 10_000;

export interface WandbQueueSourceOptions extends Omit<WandbClientOptions, 'apiKey' | 'keySource'> {
  /** The entity whose queues the agent serves; default the agent's `entity`, then `WANDB_ENTITY`. */
  entity?: string;
  /** Default: config key, then `WANDB_API_KEY`, then `~/.netrc` for the API host. */
  apiKey?: string;
  /** Project holding the queues. Default `model-registry`. */
  project?: string;
  /** Idle poll interval. Default 10 000 ms (W&B's). */
  pollIntervalMs?: number;
  /** Home directory for `~/.netrc`. Default `os.homedir()`. */
  homedir?: string;
  /** Use this client instead of creating one (the source then does not close it). */
  client?: WandbClient;
}

/**
 * The W&B Launch API as a queue source: registers with `createLaunchAgent` after a login check,
 * pops with `popFromRunQueue`, acknowledges, fails and warns items, reports the agent's status and
 * honours the UI's stop switch (`launchAgent.stopPolling`).
 */
export function createWandbQueueSource(options: WandbQueueSourceOptions = {}): QueueSource & { readonly client: WandbClient } {
  const env = options.env ?? process.env;
  const settings = resolveWandbSettings({
    config: { api_key: options.apiKey ?? null, base_url: options.baseUrl ?? null, entity: options.entity ?? null },
    env,
    homedir: options.homedir ?? osHomedir(),
  });
  const logger = options.logger ?? silentLogger;
  const project = options.project ?? LAUNCH_PROJECT;
  const pollIntervalMs = options.pollIntervalMs ?? DEFAULT_WANDB_POLL_INTERVAL_MS;
  if (!Number.isFinite(pollIntervalMs) || pollIntervalMs <= 0) {
    throw new LaunchError({ code: 'wandb.options_invalid', message: `pollIntervalMs must be a positive number of milliseconds, found ${pollIntervalMs}` });
  }
  const ownsClient = !options.client;
  let client: WandbClient;
  if (options.client) {
    client = options.client;
  } else {
    if (!settings.apiKey) {
      throw new LaunchError({
        code: 'wandb.no_api_key',
        message: `no W&B API key for ${settings.baseUrl}: none in the agent config, WANDB_API_KEY or ~/.netrc`,
        hint: 'set WANDB_API_KEY, add api_key to the agent config, or run `wandb login`',
      });
    }
    const redactor = options.redactor ?? new Redactor();
    client = createWandbClient({
      ...options,
      apiKey: settings.apiKey,
      baseUrl: settings.baseUrl,
      ...(settings.keySource ? { keySource: settings.keySource } : {}),
      redactor,
      logger,
    });
  }
  const keyOrigin = describeKeySource(settings);
  let entity = settings.entity;
  const queueEntity = (): string => {
    if (!entity) throw new LaunchError({ code: 'wandb.no_entity', message: 'the W&B source is not registered yet (no entity)' });
    return entity;
  };

  async function checkLogin(): Promise<{ entity: string | null }> {
    let viewer;
    try {
      viewer = await client.viewer();
    } catch (error) {
      if (LaunchError.isInstance(error) && error.code === 'wandb.unauthorized') {
        throw new LaunchError({
          code: 'wandb.login_failed',
          message: `cannot log in to W&B at ${client.baseUrl}: the API key from ${keyOrigin} was rejected`,
          hint: error.hint ?? 'check the key, or run `wandb login`',
          cause: error,
        });
      }
      throw error;
    }
    if (!viewer) {
      throw new LaunchError({
        code: 'wandb.login_failed',
        message: `cannot log in to W&B at ${client.baseUrl}: the API key from ${keyOrigin} belongs to no user`,
        hint: 'check the key, or run `wandb login`',
      });
    }
    logger.info({ user: viewer.username, baseUrl: client.baseUrl }, `logged in to W&B as ${viewer.username ?? viewer.id}`);
    return { entity: viewer.entity };
  }

  return {
    specificationVersion: 'v1',
    name: 'wandb',
    capabilities: { notify: false, pollIntervalMs },
    client,

    async register(agent: AgentInfo): Promise<AgentRegistration> {
      const viewer = await checkLogin();
      // W&B falls back to the key's default entity when none is configured.
      entity = agent.entity ?? entity ?? viewer.entity ?? undefined;
      if (!entity) {
        throw new LaunchError({
          code: 'wandb.no_entity',
          message: 'no W&B entity is configured',
          hint: 'set `entity` in the agent config, pass --entity, or set WANDB_ENTITY',
        });
      }
      if (agent.queues.length === 0) {
        throw new LaunchError({ code: 'wandb.no_queues', message: 'the agent serves no queues', hint: 'name at least one queue (`queues` or --queue)' });
      }
      if (await client.entityIsTeam(entity)) {
        logger.warn({ entity }, `the agent runs for team entity ${entity}: every member of this team can run code on this machine through its queues`);
      }
      let queues = await client.projectRunQueues(entity, project);
      if (queues.length === 0) {
        // W&B's agent creates a `default` queue in an entity that has none.
        logger.info({ entity }, `no run queues in ${entity}/${project}; creating queue default`);
        const id = await client.createRunQueue(entity, project, 'default', 'PROJECT');
        queues = [{ id, name: 'default', createdBy: null, access: 'PROJECT' }];
      }
      const byName = new Map(queues.map((q) => [q.name, q.id]));
      const missing = agent.queues.filter((q) => !byName.has(q));
      if (missing.length > 0) {
        const names = [...byName.keys()];
        const lines = missing.map((q) => {
          const guess = closest(q, names);
          return `queue ${JSON.stringify(q)}${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ''}`;
        });
        throw new LaunchError({
          code: 'wandb.queue_not_found',
          message: `${missing.length === 1 ? 'a requested run queue does' : `${missing.length} requested run queues do`} not exist in ${entity}/${project}: ${lines.join(', ')}. Available: ${names.join(', ') || 'none'}`,
          hint: 'create the queue in the W&B UI (Launch → Create queue) or fix the name in `queues`',
        });
      }
      const agentId = await client.createLaunchAgent({
        entity,
        project,
        queueIds: agent.queues.map((q) => byName.get(q)!),
        hostname: agent.hostname || osHostname(),
        agentConfig: new Redactor().redactValue(agent.config),
        version: agent.version,
      });
      const info = await client.launchAgent(agentId);
      return { id: agentId, name: info?.name ?? agentId };
    },

    async pop(queue: string, agentId: string): Promise<QueueItem | null> {
      const item = await client.popFromRunQueue({ entity: queueEntity(), project, queue, agentId });
      return item ? { id: item.id, queue, spec: item.runSpec } : null;
    },

    async ack(item: QueueItem, runId: string): Promise<void> {
      const ok = await client.ackRunQueueItem(item.id, runId, { entity: queueEntity(), project, queue: item.queue });
      if (!ok) {
        throw new LaunchError({
          code: 'wandb.ack_rejected',
          message: `W&B refused to acknowledge run queue item ${item.id}: another agent may have acknowledged it, or the claim expired`,
        });
      }
    },

    async fail(item: QueueItem, failure: FailureReport): Promise<void> {
      await client.failRunQueueItem(item.id, { message: failure.message, stage: failure.stage, ...(failure.files ? { filePaths: failure.files } : {}) });
    },

    async warn(item: QueueItem, warning: WarningReport): Promise<void> {
      await client.updateRunQueueItemWarning(item.id, {
        message: warning.message,
        stage: warning.stage,
        ...(warning.files ? { filePaths: warning.files } : {}),
      });
    },

    async finish(): Promise<void> {
      // W&B learns a run's end from the run itself; there is no queue-side record to write.
    },

    async requeue(item: QueueItem, spec: Record<string, unknown>): Promise<string> {
      const pushed = await client.pushToRunQueueByName({
        entity: queueEntity(),
        project,
        queue: item.queue,
        runSpec: spec,
        ...(item.priority ? { priority: PRIORITY_VALUE[item.priority] } : {}),
      });
      return pushed.id;
    },

    async updateAgentStatus(agentId: string, status: AgentStatus): Promise<void> {
      await client.updateLaunchAgent(agentId, status);
    },

    async shouldStop(agentId: string): Promise<boolean> {
      const agent = await client.launchAgent(agentId);
      return agent?.stopPolling === true;
    },

    async isRunStopped(run: RunRef): Promise<boolean> {
      const runEntity = run.entity ?? entity;
      if (!runEntity || !run.project) return false;
      return client.runStopped({ entity: runEntity, project: run.project, runId: run.runId });
    },

    async close(): Promise<void> {
      if (ownsClient) await client.close();
    },
  };
}
