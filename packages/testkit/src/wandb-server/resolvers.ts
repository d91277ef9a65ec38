import { GraphQLError, GraphQLScalarType, Kind } from 'graphql';
import type { AgentRecord, ItemRecord, QueueRecord, UserRecord, WandbState } from './state.js';
import { WandbServerError } from './state.js';

/** Per-request context: the user the API key belongs to. */
export interface WandbContext {
  user: UserRecord;
}

/** W&B's JSONString: a string holding JSON, checked to parse. */
const JSONString = new GraphQLScalarType({
  name: 'JSONString',
  serialize: (v) => (typeof v === 'string' ? v : JSON.stringify(v)),
  parseValue: (v) => {
    if (typeof v !== 'string') throw new GraphQLError('JSONString must be a string holding JSON');
    return v;
  },
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.STRING) throw new GraphQLError('JSONString must be a string holding JSON');
    return ast.value;
  },
});

const DateTime = new GraphQLScalarType({
  name: 'DateTime',
  serialize: (v) => new Date(v as number).toISOString(),
});

function parseJson(text: string, field: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new WandbServerError(`${field} is not valid JSON`);
  }
}

function parseObject(text: string, field: string): Record<string, unknown> {
  const v = parseJson(text, field);
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new WandbServerError(`${field} must be a JSON object`);
  return v as Record<string, unknown>;
}

/** Turns model errors into GraphQL errors; anything else propagates as a 500-worthy bug. */
function guard<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  return (...args: A) => {
    try {
      return fn(...args);
    } catch (e) {
      if (e instanceof WandbServerError) throw new GraphQLError(e.message);
      throw e;
    }
  };
}

const queueView = (q: QueueRecord) => ({
  id: q.id,
  name: q.name,
  createdBy: q.createdBy,
  access: q.access,
  prioritizationMode: q.prioritizationMode,
  entity: q.entity,
  project: q.project,
});
const itemView = (i: ItemRecord) => ({
  id: i.id,
  state: i.state,
  createdAt: i.createdAt,
  updatedAt: i.updatedAt,
  runSpec: JSON.stringify(i.runSpec),
  priority: i.priority,
  associatedRunId: i.runName ?? null,
  launchAgentId: i.leasedBy ?? null,
  error: i.failure ?? null,
  warnings: i.warnings,
});
const PAGE_MAX = 100;
const cursorOf = (seq: number) => Buffer.from(`RunQueueItemCursor:${seq}`).toString('base64');
function seqOfCursor(cursor: string): number {
  const m = /^RunQueueItemCursor:(\d+)$/.exec(Buffer.from(cursor, 'base64').toString('utf8'));
  if (!m) throw new WandbServerError(`after: ${JSON.stringify(cursor)} is not a cursor this server gave out`);
  return Number(m[1]);
}
type QueueView = ReturnType<typeof queueView> & { entity: string; project: string };
const agentView = (a: AgentRecord) => ({ ...a, agentConfig: JSON.stringify(a.agentConfig ?? null) });

type Input<T> = { input: T };

export function createResolvers(state: WandbState) {
  return {
    JSONString,
    DateTime,
    Query: {
      viewer: (_: unknown, __: unknown, { user }: WandbContext) => ({ ...user, teams: user.teams }),
      entity: (_: unknown, { name }: { name: string }, { user }: WandbContext) => state.entity(user, name),
      project: (_: unknown, args: { name?: string | null; entityName?: string | null }, { user }: WandbContext) => {
        const entityName = args.entityName ?? user.entity;
        const name = args.name ?? 'uncategorized';
        if (!state.canAccess(user, entityName)) return null;
        return { id: Buffer.from(`Project:${entityName}/${name}`).toString('base64'), name, entityName };
      },
      launchAgent: (_: unknown, { id }: { id: string }, { user }: WandbContext) => {
        const a = state.agent(user, id);
        return a ? agentView(a) : null;
      },
    },
    Project: {
      runQueues: (p: { name: string; entityName: string }) => state.projectQueues(p.entityName, p.name).map(queueView),
      runQueue: (p: { name: string; entityName: string }, { name }: { name: string }) => {
        const q = state.projectQueues(p.entityName, p.name).find((x) => x.name === name);
        return q ? queueView(q) : null;
      },
      run: (p: { name: string; entityName: string }, { name }: { name: string }) => {
        const r = state.run(p.entityName, p.name, name);
        return r ? { id: Buffer.from(`Run:${p.entityName}/${p.name}/${name}`).toString('base64'), ...r } : null;
      },
    },
    RunQueue: {
      runQueueItems: guard((q: QueueView, args: { first?: number | null; after?: string | null }, { user }: WandbContext) => {
        if (args.first != null && args.first < 0) throw new WandbServerError(`first must not be negative, got ${args.first}`);
        const first = Math.min(args.first ?? PAGE_MAX, PAGE_MAX);
        const all = state.queueItems(user, q.entity, q.project, q.name) ?? [];
        const from = args.after == null ? all : all.filter((i) => i.seq > seqOfCursor(args.after!));
        const page = from.slice(0, first);
        return {
          pageInfo: {
            hasNextPage: from.length > page.length,
            hasPreviousPage: from.length < all.length,
            startCursor: page[0] ? cursorOf(page[0].seq) : null,
            endCursor: page.length > 0 ? cursorOf(page[page.length - 1]!.seq) : null,
          },
          edges: page.map((i) => ({ cursor: cursorOf(i.seq), node: itemView(i) })),
        };
      }),
      runQueueItem: (q: QueueView, { id }: { id: string }, { user }: WandbContext) => {
        const item = (state.queueItems(user, q.entity, q.project, q.name) ?? []).find((i) => i.id === id);
        return item ? itemView(item) : null;
      },
    },
    Mutation: {
      createLaunchAgent: guard(
        (
          _: unknown,
          {
            input,
          }: Input<{ entityName: string; projectName: string; runQueues: string[]; hostname: string; agentConfig?: string | null; version?: string | null }>,
          { user }: WandbContext,
        ) => {
          const agentConfig = input.agentConfig == null ? null : parseJson(input.agentConfig, 'agentConfig');
          const a = state.createAgent(user, {
            entity: input.entityName,
            project: input.projectName,
            runQueues: input.runQueues,
            hostname: input.hostname,
            agentConfig,
            version: input.version ?? null,
          });
          return { launchAgentId: a.id, success: true };
        },
      ),
      updateLaunchAgent: guard((_: unknown, { input }: Input<{ launchAgentId: string; agentStatus?: string | null }>, { user }: WandbContext) => ({
        success: state.updateAgent(user, input.launchAgentId, input.agentStatus),
      })),
      createRunQueue: guard(
        (
          _: unknown,
          {
            input,
          }: Input<{ entityName: string; projectName: string; queueName: string; access: 'PROJECT' | 'USER'; prioritizationMode?: 'V0' | 'DISABLED' | null }>,
          { user }: WandbContext,
        ) => {
          if (!state.canAccess(user, input.entityName)) throw new WandbServerError(`permission denied on entity ${input.entityName}`);
          const q = state.createQueue({
            entity: input.entityName,
            project: input.projectName,
            name: input.queueName,
            access: input.access,
            createdBy: user.username,
            prioritizationMode: input.prioritizationMode ?? 'V0',
          });
          return { success: true, queueID: q.id };
        },
      ),
      popFromRunQueue: guard(
        (
          _: unknown,
          { input }: Input<{ entityName: string; projectName: string; queueName: string; launchAgentId?: string | null }>,
          { user }: WandbContext,
        ) => {
          const item = state.pop(user, { entity: input.entityName, project: input.projectName, queue: input.queueName, agentId: input.launchAgentId ?? null });
          return item ? { runQueueItemId: item.id, runSpec: JSON.stringify(item.runSpec) } : null;
        },
      ),
      ackRunQueueItem: guard((_: unknown, { input }: Input<{ runQueueItemId: string; runName: string }>, { user }: WandbContext) => ({
        success: state.ack(user, input.runQueueItemId, input.runName),
      })),
      failRunQueueItem: guard(
        (
          _: unknown,
          { input }: Input<{ runQueueItemId: string; message?: string | null; stage?: string | null; filePaths?: string[] | null }>,
          { user }: WandbContext,
        ) => ({
          success: state.fail(user, input.runQueueItemId, input),
        }),
      ),
      updateRunQueueItemWarning: guard(
        (_: unknown, { input }: Input<{ runQueueItemId: string; message: string; stage: string; filePaths?: string[] | null }>, { user }: WandbContext) => ({
          success: state.warn(user, input.runQueueItemId, input),
        }),
      ),
      pushToRunQueueByName: guard(
        (
          _: unknown,
          {
            input,
          }: Input<{
            entityName: string;
            projectName: string;
            queueName: string;
            runSpec: string;
            priority?: number | null;
            templateVariableValues?: string | null;
          }>,
          { user }: WandbContext,
        ) => {
          const item = state.push(user, {
            entity: input.entityName,
            project: input.projectName,
            queue: input.queueName,
            runSpec: parseObject(input.runSpec, 'runSpec'),
            priority: input.priority ?? null,
            templateVariableValues: input.templateVariableValues == null ? null : parseObject(input.templateVariableValues, 'templateVariableValues'),
          });
          return { runQueueItemId: item.id, runSpec: JSON.stringify(item.runSpec) };
        },
      ),
    },
  };
}
