import { EventEmitter } from 'node:events';

/**
 * The in-memory model behind the W&B Launch test server: users and their keys, entities, run queues,
 * queue items with W&B's lease semantics, launch agents and runs. GraphQL resolvers call into it;
 * tests read and steer it directly.
 */

export type ItemState = 'PENDING' | 'LEASED' | 'CLAIMED' | 'FAILED';
export type AgentStatusValue = 'POLLING' | 'RUNNING' | 'KILLED';
const AGENT_STATUSES: ReadonlySet<string> = new Set(['POLLING', 'RUNNING', 'KILLED']);

export interface TemplateVariable {
  /** JSON-schema-like type of the value. */
  schema: { type: 'integer' | 'number' | 'string'; minimum?: number; maximum?: number; enum?: unknown[]; default?: unknown };
}

export interface QueueInit {
  entity: string;
  name: string;
  /** Default `model-registry` (W&B's launch project). */
  project?: string;
  access?: 'PROJECT' | 'USER';
  createdBy?: string;
  /** `V0` pops by priority then age; `DISABLED` pops by age only. Default `V0`. */
  prioritizationMode?: 'V0' | 'DISABLED';
  /** Resource the queue's config targets (`kubernetes`, `local-process`, …). */
  resource?: string;
  /** The queue's resource config; `{{name}}` placeholders are filled from template variables. */
  config?: Record<string, unknown>;
  templateVariables?: Record<string, TemplateVariable>;
}

export interface QueueRecord extends Required<Pick<QueueInit, 'entity' | 'name' | 'project' | 'access' | 'prioritizationMode'>> {
  id: string;
  createdBy: string | null;
  resource?: string;
  config?: Record<string, unknown>;
  templateVariables?: Record<string, TemplateVariable>;
}

export interface ItemRecord {
  id: string;
  queueId: string;
  runSpec: Record<string, unknown>;
  priority: number;
  state: ItemState;
  createdAt: number;
  /** Last change of state (push, pop, lease expiry, ack, fail, warning). */
  updatedAt: number;
  /** Monotonic sequence, the FIFO tie-break. */
  seq: number;
  leasedAt?: number;
  /** The agent holding the lease, kept once the item is claimed (`launchAgentId` in the API). */
  leasedBy?: string | null;
  /** How many times the item was handed out by `popFromRunQueue`. */
  pops: number;
  runName?: string;
  failure?: { message: string | null; stage: string | null; filePaths: string[] };
  warnings: Array<{ message: string; stage: string; filePaths: string[] }>;
}

export interface AgentRecord {
  id: string;
  name: string;
  entity: string;
  project: string;
  runQueues: string[];
  hostname: string;
  agentConfig: unknown;
  version: string | null;
  agentStatus: AgentStatusValue;
  stopPolling: boolean;
  heartbeatAt: number;
  statusHistory: AgentStatusValue[];
}

export interface RunRecord {
  entity: string;
  project: string;
  name: string;
  state: string;
  stopped: boolean;
}

export interface UserInit {
  apiKey: string;
  username: string;
  /** The user's own entity; default the username. */
  entity?: string;
  /** Team entities the user belongs to. */
  teams?: string[];
  email?: string;
}

export interface UserRecord extends Required<Omit<UserInit, 'email'>> {
  id: string;
  email: string | null;
}

/** A GraphQL-level failure the resolvers turn into an `errors` entry. */
export class WandbServerError extends Error {}

/** W&B's ids are base64 of `<Type>:<n>`; using that shape catches clients that assume numbers. */
function relayId(type: string, n: number): string {
  return Buffer.from(`${type}:${n}`).toString('base64');
}

export interface WandbStateOptions {
  users: UserInit[];
  /** Entities that are teams (`entity.isTeam`). */
  teams?: string[];
  queues?: QueueInit[];
  /** Time after which a popped but unacknowledged item returns to the queue. W&B: about a minute. */
  leaseTimeoutMs?: number;
  now?: () => number;
}

export function createWandbState(options: WandbStateOptions) {
  const now = options.now ?? Date.now;
  const leaseTimeoutMs = options.leaseTimeoutMs ?? 60_000;
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const users = new Map<string, UserRecord>();
  const teams = new Set(options.teams ?? []);
  const queues = new Map<string, QueueRecord>();
  const items = new Map<string, ItemRecord>();
  const agents = new Map<string, AgentRecord>();
  const runs = new Map<string, RunRecord>();
  let counter = 0;
  const next = () => ++counter;
  const changed = () => events.emit('change');

  for (const [i, u] of options.users.entries()) {
    users.set(u.apiKey, {
      id: relayId('User', i + 1),
      apiKey: u.apiKey,
      username: u.username,
      entity: u.entity ?? u.username,
      teams: u.teams ?? [],
      email: u.email ?? null,
    });
  }
  for (const t of teams) {
    if (![...users.values()].some((u) => u.teams.includes(t))) {
      // A team nobody belongs to is a set-up mistake in a test; say so early.
      throw new Error(`test server: team "${t}" has no member among the users`);
    }
  }

  function knownEntities(): Set<string> {
    const out = new Set<string>();
    for (const u of users.values()) {
      out.add(u.entity);
      for (const t of u.teams) out.add(t);
    }
    return out;
  }

  function canAccess(user: UserRecord, entity: string): boolean {
    return user.entity === entity || user.teams.includes(entity);
  }

  function requireAccess(user: UserRecord, entity: string): void {
    if (!canAccess(user, entity)) throw new WandbServerError(`permission denied: user ${user.username} has no access to entity ${entity}`);
  }

  function createQueue(init: QueueInit): QueueRecord {
    const project = init.project ?? 'model-registry';
    for (const q of queues.values()) {
      if (q.entity === init.entity && q.project === project && q.name === init.name) {
        throw new WandbServerError(`a run queue named ${init.name} already exists in ${init.entity}/${project}`);
      }
    }
    const q: QueueRecord = {
      id: relayId('RunQueue', next()),
      entity: init.entity,
      name: init.name,
      project,
      access: init.access ?? 'PROJECT',
      createdBy: init.createdBy ?? null,
      prioritizationMode: init.prioritizationMode ?? 'V0',
      ...(init.resource === undefined ? {} : { resource: init.resource }),
      ...(init.config === undefined ? {} : { config: init.config }),
      ...(init.templateVariables === undefined ? {} : { templateVariables: init.templateVariables }),
    };
    queues.set(q.id, q);
    changed();
    return q;
  }

  for (const q of options.queues ?? []) createQueue(q);

  function queueByName(entity: string, project: string, name: string): QueueRecord {
    for (const q of queues.values()) if (q.entity === entity && q.project === project && q.name === name) return q;
    throw new WandbServerError(`run queue ${name} not found in ${entity}/${project}`);
  }

  /** Lazily returns expired leases to the queue (W&B does this server-side after about a minute). */
  function expireLeases(): void {
    const t = now();
    for (const item of items.values()) {
      if (item.state === 'LEASED' && item.leasedAt !== undefined && t - item.leasedAt >= leaseTimeoutMs) {
        item.state = 'PENDING';
        item.updatedAt = t;
        delete item.leasedAt;
        delete item.leasedBy;
      }
    }
  }

  function itemOrThrow(user: UserRecord, id: string): ItemRecord {
    const item = items.get(id);
    if (!item) throw new WandbServerError(`run queue item ${id} not found`);
    const q = queues.get(item.queueId)!;
    requireAccess(user, q.entity);
    return item;
  }

  function runKey(entity: string, project: string, name: string): string {
    return `${entity}/${project}/${name}`;
  }

  function fillTemplate(value: unknown, vars: Record<string, unknown>): unknown {
    if (typeof value === 'string') {
      const whole = /^\{\{\s*([\w-]+)\s*\}\}$/.exec(value);
      if (whole && whole[1]! in vars) return vars[whole[1]!];
      return value.replace(/\{\{\s*([\w-]+)\s*\}\}/g, (m, name: string) => (name in vars ? String(vars[name]) : m));
    }
    if (Array.isArray(value)) return value.map((v) => fillTemplate(v, vars));
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fillTemplate(v, vars)]));
    }
    return value;
  }

  function checkTemplateValues(q: QueueRecord, given: Record<string, unknown>): Record<string, unknown> {
    const declared = q.templateVariables ?? {};
    const out: Record<string, unknown> = {};
    for (const name of Object.keys(given)) {
      if (!(name in declared)) throw new WandbServerError(`template variable ${name} is not defined on queue ${q.name}`);
    }
    for (const [name, { schema }] of Object.entries(declared)) {
      const v = name in given ? given[name] : schema.default;
      if (v === undefined) throw new WandbServerError(`template variable ${name} of queue ${q.name} needs a value`);
      const typeOk = schema.type === 'string' ? typeof v === 'string' : schema.type === 'integer' ? Number.isInteger(v) : typeof v === 'number';
      if (!typeOk) throw new WandbServerError(`template variable ${name} must be of type ${schema.type}`);
      if (typeof v === 'number' && ((schema.minimum !== undefined && v < schema.minimum) || (schema.maximum !== undefined && v > schema.maximum))) {
        throw new WandbServerError(`template variable ${name} is out of range`);
      }
      if (schema.enum && !schema.enum.includes(v)) throw new WandbServerError(`template variable ${name} must be one of ${JSON.stringify(schema.enum)}`);
      out[name] = v;
    }
    return out;
  }

  return {
    events,
    users,
    queues,
    items,
    agents,
    runs,
    leaseTimeoutMs,
    now,
    changed,
    canAccess,
    knownEntities,
    createQueue,

    userForKey(key: string): UserRecord | undefined {
      return users.get(key);
    },

    entity(user: UserRecord, name: string): { id: string; name: string; isTeam: boolean } | null {
      if (!canAccess(user, name)) return null;
      return { id: Buffer.from(`Entity:${name}`).toString('base64'), name, isTeam: teams.has(name) };
    },

    projectQueues(entity: string, project: string): QueueRecord[] {
      return [...queues.values()].filter((q) => q.entity === entity && q.project === project);
    },

    queueByName,

    /** The items of a queue in the order they were pushed, leases brought up to date; null when the queue does not exist. */
    queueItems(user: UserRecord, entity: string, project: string, name: string): ItemRecord[] | null {
      if (!canAccess(user, entity)) return null;
      const q = [...queues.values()].find((x) => x.entity === entity && x.project === project && x.name === name);
      if (!q) return null;
      expireLeases();
      return [...items.values()].filter((i) => i.queueId === q.id).sort((a, b) => a.seq - b.seq);
    },

    push(
      user: UserRecord,
      input: {
        entity: string;
        project: string;
        queue: string;
        runSpec: Record<string, unknown>;
        priority?: number | null;
        templateVariableValues?: Record<string, unknown> | null;
      },
    ): ItemRecord {
      requireAccess(user, input.entity);
      const q = queueByName(input.entity, input.project, input.queue);
      if (input.priority != null && (!Number.isInteger(input.priority) || input.priority < 0 || input.priority > 4)) {
        throw new WandbServerError(`priority must be an integer from 0 (critical) to 4, got ${input.priority}`);
      }
      let spec = { ...input.runSpec };
      if (q.config !== undefined && q.resource !== undefined) {
        const vars = checkTemplateValues(q, input.templateVariableValues ?? {});
        const fromQueue = fillTemplate(q.config, vars) as Record<string, unknown>;
        // With template variables the queue's config wins outright (W&B drops the spec's resource_args).
        const own = input.templateVariableValues ? undefined : (spec.resource_args as Record<string, unknown> | undefined)?.[q.resource];
        spec = {
          ...spec,
          resource: q.resource,
          resource_args: { [q.resource]: { ...fromQueue, ...(own && typeof own === 'object' ? own : {}) } },
        };
      } else if (input.templateVariableValues && Object.keys(input.templateVariableValues).length > 0) {
        throw new WandbServerError(`queue ${q.name} defines no template variables`);
      }
      const seq = next();
      const item: ItemRecord = {
        id: relayId('RunQueueItem', seq),
        queueId: q.id,
        runSpec: spec,
        priority: input.priority ?? 2,
        state: 'PENDING',
        createdAt: now(),
        updatedAt: now(),
        seq,
        pops: 0,
        warnings: [],
      };
      items.set(item.id, item);
      changed();
      return item;
    },

    pop(user: UserRecord, input: { entity: string; project: string; queue: string; agentId?: string | null }): ItemRecord | null {
      requireAccess(user, input.entity);
      const q = queueByName(input.entity, input.project, input.queue);
      if (input.agentId != null && !agents.has(input.agentId)) throw new WandbServerError(`launch agent ${input.agentId} not found`);
      expireLeases();
      const pending = [...items.values()].filter((i) => i.queueId === q.id && i.state === 'PENDING');
      pending.sort((a, b) => (q.prioritizationMode === 'V0' ? a.priority - b.priority : 0) || a.seq - b.seq);
      const item = pending[0];
      if (!item) return null;
      item.state = 'LEASED';
      item.leasedAt = now();
      item.updatedAt = item.leasedAt;
      item.leasedBy = input.agentId ?? null;
      item.pops += 1;
      changed();
      return item;
    },

    ack(user: UserRecord, id: string, runName: string): boolean {
      const item = itemOrThrow(user, id);
      expireLeases();
      if (item.state !== 'LEASED') return false;
      item.state = 'CLAIMED';
      item.updatedAt = now();
      item.runName = runName;
      const entity = typeof item.runSpec.entity === 'string' ? item.runSpec.entity : queues.get(item.queueId)!.entity;
      const project = typeof item.runSpec.project === 'string' ? item.runSpec.project : 'uncategorized';
      // W&B reserves the run when the item is acknowledged; it stays `pending` until the run calls wandb.init.
      const key = runKey(entity, project, runName);
      if (!runs.has(key)) runs.set(key, { entity, project, name: runName, state: 'pending', stopped: false });
      changed();
      return true;
    },

    fail(user: UserRecord, id: string, failure: { message?: string | null; stage?: string | null; filePaths?: string[] | null }): boolean {
      const item = itemOrThrow(user, id);
      item.state = 'FAILED';
      item.updatedAt = now();
      item.failure = { message: failure.message ?? null, stage: failure.stage ?? null, filePaths: failure.filePaths ?? [] };
      changed();
      return true;
    },

    warn(user: UserRecord, id: string, warning: { message: string; stage: string; filePaths?: string[] | null }): boolean {
      const item = itemOrThrow(user, id);
      item.warnings.push({ message: warning.message, stage: warning.stage, filePaths: warning.filePaths ?? [] });
      item.updatedAt = now();
      changed();
      return true;
    },

    createAgent(
      user: UserRecord,
      input: { entity: string; project: string; runQueues: string[]; hostname: string; agentConfig: unknown; version: string | null },
    ): AgentRecord {
      requireAccess(user, input.entity);
      for (const id of input.runQueues) {
        const q = queues.get(id);
        if (!q || q.entity !== input.entity || q.project !== input.project) {
          throw new WandbServerError(`run queue ${id} not found in ${input.entity}/${input.project}`);
        }
      }
      const n = next();
      const agent: AgentRecord = {
        id: relayId('LaunchAgent', n),
        name: `launch-agent-${n.toString(36)}`,
        entity: input.entity,
        project: input.project,
        runQueues: [...input.runQueues],
        hostname: input.hostname,
        agentConfig: input.agentConfig,
        version: input.version,
        agentStatus: 'POLLING',
        stopPolling: false,
        heartbeatAt: now(),
        statusHistory: ['POLLING'],
      };
      agents.set(agent.id, agent);
      changed();
      return agent;
    },

    updateAgent(user: UserRecord, id: string, status: string | null | undefined): boolean {
      const agent = agents.get(id);
      if (!agent) throw new WandbServerError(`launch agent ${id} not found`);
      requireAccess(user, agent.entity);
      if (status != null) {
        if (!AGENT_STATUSES.has(status)) throw new WandbServerError(`agentStatus must be POLLING, RUNNING or KILLED, got ${status}`);
        agent.agentStatus = status as AgentStatusValue;
        agent.statusHistory.push(agent.agentStatus);
      }
      agent.heartbeatAt = now();
      changed();
      return true;
    },

    agent(user: UserRecord, id: string): AgentRecord | null {
      const agent = agents.get(id);
      if (!agent || !canAccess(user, agent.entity)) return null;
      return agent;
    },

    run(entity: string, project: string, name: string): RunRecord | undefined {
      return runs.get(runKey(entity, project, name));
    },

    /** Creates or updates a run (what `wandb.init` and the run's own state changes do on the real server). */
    setRun(entity: string, project: string, name: string, patch: Partial<Pick<RunRecord, 'state' | 'stopped'>>): RunRecord {
      const key = runKey(entity, project, name);
      const run = runs.get(key) ?? { entity, project, name, state: 'pending', stopped: false };
      Object.assign(run, patch);
      runs.set(key, run);
      changed();
      return run;
    },

    expireLeases,
  };
}

export type WandbState = ReturnType<typeof createWandbState>;
