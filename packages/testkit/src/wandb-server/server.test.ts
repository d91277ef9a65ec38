import { afterEach, describe, expect, it } from 'vitest';
import { createWandbTestServer, DEFAULT_TEST_API_KEY, type WandbTestServer } from './server.js';

// Raw HTTP against the server, so its wire behaviour is checked independently of @launch/wandb.
const servers: WandbTestServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function start(options: Parameters<typeof createWandbTestServer>[0] = {}) {
  const s = await createWandbTestServer(options);
  servers.push(s);
  return s;
}

const basic = (key: string) => `Basic ${Buffer.from(`api:${key}`).toString('base64')}`;

async function gql(s: WandbTestServer, query: string, variables: Record<string, unknown> = {}, key: string | null = s.apiKey) {
  const res = await fetch(s.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key === null ? {} : { authorization: basic(key) }) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: Record<string, any>; errors?: Array<{ message: string }> };
  return { status: res.status, headers: res.headers, ...body };
}

const PUSH = `mutation pushToRunQueueByName($entityName: String!, $projectName: String!, $queueName: String!, $runSpec: JSONString!, $priority: Int, $templateVariableValues: JSONString) {
  pushToRunQueueByName(input: {entityName: $entityName, projectName: $projectName, queueName: $queueName, runSpec: $runSpec, priority: $priority, templateVariableValues: $templateVariableValues}) { runQueueItemId runSpec } }`;
const POP = `mutation popFromRunQueue($entity: String!, $project: String!, $queueName: String!, $launchAgentId: ID) {
  popFromRunQueue(input: {entityName: $entity, projectName: $project, queueName: $queueName, launchAgentId: $launchAgentId}) { runQueueItemId runSpec } }`;
const ACK = `mutation ackRunQueueItem($itemId: ID!, $runId: String!) { ackRunQueueItem(input: {runQueueItemId: $itemId, runName: $runId}) { success } }`;

const push = (s: WandbTestServer, queue: string, spec: object, extra: Record<string, unknown> = {}) =>
  gql(s, PUSH, { entityName: 'tester', projectName: 'model-registry', queueName: queue, runSpec: JSON.stringify(spec), ...extra });
const pop = (s: WandbTestServer, queue: string) => gql(s, POP, { entity: 'tester', project: 'model-registry', queueName: queue });

describe('W&B Launch test server', () => {
  it('answers 401 without basic auth or with an unknown key, and checks only the password', async () => {
    const s = await start();
    expect((await gql(s, '{ viewer { username } }', {}, null)).status).toBe(401);
    expect((await gql(s, '{ viewer { username } }', {}, 'nope-nope-nope')).status).toBe(401);
    const ok = await gql(s, '{ viewer { username entity } }');
    expect(ok).toMatchObject({ status: 200, data: { viewer: { username: 'tester', entity: 'tester' } } });
    expect(s.apiKey).toBe(DEFAULT_TEST_API_KEY);
    expect(s.requests.map((r) => r.status)).toEqual([401, 401, 200]);
  });

  it('pops by priority then age in V0 mode, by age only when prioritisation is disabled', async () => {
    const s = await start({
      queues: [
        { entity: 'tester', name: 'v0' },
        { entity: 'tester', name: 'fifo', prioritizationMode: 'DISABLED' },
      ],
    });
    for (const q of ['v0', 'fifo']) {
      await push(s, q, { n: 'low' }, { priority: 3 });
      await push(s, q, { n: 'default' });
      await push(s, q, { n: 'critical' }, { priority: 0 });
    }
    const drain = async (q: string) => {
      const out: string[] = [];
      for (;;) {
        const r = await pop(s, q);
        if (!r.data!.popFromRunQueue) return out;
        out.push(JSON.parse(r.data!.popFromRunQueue.runSpec).n);
      }
    };
    expect(await drain('v0')).toEqual(['critical', 'default', 'low']);
    expect(await drain('fifo')).toEqual(['low', 'default', 'critical']);
  });

  it('puts a popped, unacknowledged item back after the lease timeout; an acked one never', async () => {
    let now = 1_000_000;
    const s = await start({ queues: [{ entity: 'tester', name: 'q' }], leaseTimeoutMs: 60_000, now: () => now });
    const a = (await push(s, 'q', { n: 'a' })).data!.pushToRunQueueByName.runQueueItemId;
    const b = (await push(s, 'q', { n: 'b' })).data!.pushToRunQueueByName.runQueueItemId;
    expect((await pop(s, 'q')).data!.popFromRunQueue.runQueueItemId).toBe(a);
    expect((await pop(s, 'q')).data!.popFromRunQueue.runQueueItemId).toBe(b);
    expect((await gql(s, ACK, { itemId: b, runId: 'run-b' })).data!.ackRunQueueItem.success).toBe(true);
    now += 59_999;
    expect((await pop(s, 'q')).data!.popFromRunQueue).toBeNull();
    now += 1;
    expect((await pop(s, 'q')).data!.popFromRunQueue.runQueueItemId).toBe(a);
    expect((await pop(s, 'q')).data!.popFromRunQueue).toBeNull();
    // The lease of `a` expired once; acking it now (re-leased) works, a second ack does not.
    expect((await gql(s, ACK, { itemId: a, runId: 'run-a' })).data!.ackRunQueueItem.success).toBe(true);
    expect((await gql(s, ACK, { itemId: a, runId: 'run-a' })).data!.ackRunQueueItem.success).toBe(false);
    expect(s.state.items.get(a)!.pops).toBe(2);
  });

  it('merges the queue config with template variables, type-checking the values', async () => {
    const s = await start({
      queues: [
        {
          entity: 'tester',
          name: 'k8s',
          resource: 'kubernetes',
          config: { spec: { template: { spec: { containers: [{ resources: { limits: { 'nvidia.com/gpu': '{{gpus}}' } }, image: 'img:{{tag}}' }] } } } },
          templateVariables: {
            gpus: { schema: { type: 'integer', minimum: 0, maximum: 8, default: 1 } },
            tag: { schema: { type: 'string', enum: ['a', 'b'] } },
          },
        },
      ],
    });
    const r = await push(s, 'k8s', { job: 'j' }, { templateVariableValues: JSON.stringify({ gpus: 4, tag: 'b' }) });
    expect(JSON.parse(r.data!.pushToRunQueueByName.runSpec)).toEqual({
      job: 'j',
      resource: 'kubernetes',
      resource_args: { kubernetes: { spec: { template: { spec: { containers: [{ resources: { limits: { 'nvidia.com/gpu': 4 } }, image: 'img:b' }] } } } } },
    });
    expect((await push(s, 'k8s', {}, { templateVariableValues: JSON.stringify({ gpus: 9, tag: 'a' }) })).errors![0]!.message).toBe(
      'template variable gpus is out of range',
    );
    expect((await push(s, 'k8s', {}, { templateVariableValues: JSON.stringify({ gpus: 1 }) })).errors![0]!.message).toBe(
      'template variable tag of queue k8s needs a value',
    );
    expect((await push(s, 'k8s', {}, { templateVariableValues: JSON.stringify({ tag: 'a', cpu: 1 }) })).errors![0]!.message).toBe(
      'template variable cpu is not defined on queue k8s',
    );
  });

  it('rejects a runSpec that is not JSON, unknown queues, other entities and unknown agent statuses', async () => {
    const s = await start({
      users: [
        { apiKey: 'key-of-alice-000000', username: 'alice' },
        { apiKey: 'key-of-bob-00000000', username: 'bob' },
      ],
      queues: [{ entity: 'bob', name: 'q' }],
    });
    const bad = await gql(s, PUSH, { entityName: 'bob', projectName: 'model-registry', queueName: 'q', runSpec: '{oops' }, 'key-of-bob-00000000');
    expect(bad.errors![0]!.message).toBe('runSpec is not valid JSON');
    const foreign = await gql(s, POP, { entity: 'bob', project: 'model-registry', queueName: 'q' }, 'key-of-alice-000000');
    expect(foreign.errors![0]!.message).toBe('permission denied: user alice has no access to entity bob');
    expect((await gql(s, '{ entity(name: "bob") { isTeam } }', {}, 'key-of-alice-000000')).data!.entity).toBeNull();
    const missing = await gql(s, POP, { entity: 'bob', project: 'model-registry', queueName: 'nope' }, 'key-of-bob-00000000');
    expect(missing.errors![0]!.message).toBe('run queue nope not found in bob/model-registry');
    const create = await gql(
      s,
      `mutation { createLaunchAgent(input: {entityName: "bob", projectName: "model-registry", runQueues: ["${[...s.state.queues.keys()][0]}"], hostname: "h"}) { launchAgentId } }`,
      {},
      'key-of-bob-00000000',
    );
    const agentId = create.data!.createLaunchAgent.launchAgentId;
    const status = await gql(
      s,
      `mutation { updateLaunchAgent(input: {launchAgentId: "${agentId}", agentStatus: "DANCING"}) { success } }`,
      {},
      'key-of-bob-00000000',
    );
    expect(status.errors![0]!.message).toBe('agentStatus must be POLLING, RUNNING or KILLED, got DANCING');
  });

  it('injects faults per operation with Retry-After, before the operation runs', async () => {
    const s = await start({ queues: [{ entity: 'tester', name: 'q' }] });
    await push(s, 'q', { n: 1 });
    s.faults.add({ status: 429, operation: 'popFromRunQueue', retryAfterSeconds: 3 });
    s.faults.add({ status: 'reset', operation: 'popFromRunQueue' });
    const throttled = await pop(s, 'q');
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('retry-after')).toBe('3');
    await expect(pop(s, 'q')).rejects.toThrow();
    expect([...s.state.items.values()][0]!.state).toBe('PENDING');
    expect((await pop(s, 'q')).data!.popFromRunQueue).not.toBeNull();
    expect(s.requests.map((r) => r.fault)).toEqual([undefined, 429, 'reset', undefined]);
  });

  it('reserves a pending run on ack and serves run state and the stopped flag', async () => {
    const s = await start({ queues: [{ entity: 'tester', name: 'q' }] });
    const id = (await push(s, 'q', { entity: 'tester', project: 'proj' })).data!.pushToRunQueueByName.runQueueItemId;
    await pop(s, 'q');
    await gql(s, ACK, { itemId: id, runId: 'r1' });
    const q = `query RunState($project: String!, $entity: String!, $name: String!) { project(name: $project, entityName: $entity) { run(name: $name) { state stopped } } }`;
    expect((await gql(s, q, { project: 'proj', entity: 'tester', name: 'r1' })).data!.project.run).toEqual({ state: 'pending', stopped: false });
    s.state.setRun('tester', 'proj', 'r1', { state: 'running', stopped: true });
    expect((await gql(s, q, { project: 'proj', entity: 'tester', name: 'r1' })).data!.project.run).toEqual({ state: 'running', stopped: true });
  });

  it('"lost-reply" runs the operation, then drops the connection without answering, for the first N calls', async () => {
    const s = await start({ queues: [{ entity: 'tester', name: 'q' }] });
    s.faults.add({ status: 'lost-reply', operation: 'pushToRunQueueByName', times: 2 });
    await expect(push(s, 'q', { n: 1 })).rejects.toThrow();
    await expect(push(s, 'q', { n: 2 })).rejects.toThrow();
    const third = await push(s, 'q', { n: 3 });
    expect(third.status).toBe(200);
    // Every push took effect although two answers never came.
    expect(s.itemsOf('tester', 'q').map((i) => i.runSpec)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect(s.requests.map((r) => [r.operation, r.fault, r.status])).toEqual([
      ['pushToRunQueueByName', 'lost-reply', 200],
      ['pushToRunQueueByName', 'lost-reply', 200],
      ['pushToRunQueueByName', undefined, 200],
    ]);
    expect(s.faults.pending()).toBe(0);
  });

  it('counts requests by operation name, faulted ones included', async () => {
    const s = await start({ queues: [{ entity: 'tester', name: 'q' }] });
    s.faults.add({ status: 503, operation: 'popFromRunQueue' });
    for (let i = 0; i < 3; i++) await pop(s, 'q');
    await gql(s, '{ viewer { username } }');
    expect(s.countRequests('popFromRunQueue')).toBe(3);
    expect(s.countRequests('viewer')).toBe(1);
    expect(s.countRequests('ackRunQueueItem')).toBe(0);
    expect(s.countRequests()).toBe(4);
  });

  it("lists a queue's items page by page with state, lease holder, run name and creation time", async () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const s = await start({ queues: [{ entity: 'tester', name: 'q' }], now: () => now });
    const agent = s.state.createAgent(s.state.userForKey(s.apiKey)!, {
      entity: 'tester',
      project: 'model-registry',
      runQueues: [...s.state.queues.keys()],
      hostname: 'h',
      agentConfig: null,
      version: null,
    });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await push(s, 'q', { n: i })).data!.pushToRunQueueByName.runQueueItemId);
      now += 1000;
    }
    await gql(s, POP, { entity: 'tester', project: 'model-registry', queueName: 'q', launchAgentId: agent.id });
    await gql(s, ACK, { itemId: ids[0], runId: 'run-0' });
    await pop(s, 'q');
    const LIST = `query GetRunQueueItems($after: String, $first: Int) { project(name: "model-registry", entityName: "tester") { runQueue(name: "q") {
      runQueueItems(first: $first, after: $after) { pageInfo { hasNextPage endCursor } edges { node { id state createdAt runSpec associatedRunId launchAgentId } } } } } }`;
    const page1 = (await gql(s, LIST, { first: 2 })).data!.project.runQueue.runQueueItems;
    expect(page1.pageInfo.hasNextPage).toBe(true);
    expect(page1.edges.map((e: any) => e.node)).toEqual([
      { id: ids[0], state: 'CLAIMED', createdAt: '2026-01-01T00:00:00.000Z', runSpec: '{"n":0}', associatedRunId: 'run-0', launchAgentId: agent.id },
      { id: ids[1], state: 'LEASED', createdAt: '2026-01-01T00:00:01.000Z', runSpec: '{"n":1}', associatedRunId: null, launchAgentId: null },
    ]);
    const rest = (await gql(s, LIST, { first: 100, after: page1.pageInfo.endCursor })).data!.project.runQueue.runQueueItems;
    expect(rest.pageInfo.hasNextPage).toBe(false);
    expect(rest.edges.map((e: any) => [e.node.id, e.node.state])).toEqual([
      [ids[2], 'PENDING'],
      [ids[3], 'PENDING'],
      [ids[4], 'PENDING'],
    ]);
    // Pages hold at most 100 items; an unknown queue is null; a forged cursor is an error.
    expect((await gql(s, LIST.replace('name: "q"', 'name: "nope"'))).data!.project.runQueue).toBeNull();
    expect((await gql(s, LIST, { after: 'bogus' })).errors![0]!.message).toBe('after: "bogus" is not a cursor this server gave out');
    const one = `{ project(name: "model-registry", entityName: "tester") { runQueue(name: "q") { runQueueItem(id: "${ids[0]}") { state associatedRunId } } } }`;
    expect((await gql(s, one)).data!.project.runQueue.runQueueItem).toEqual({ state: 'CLAIMED', associatedRunId: 'run-0' });
  });
});
