import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LaunchError } from '@launch/core';
import { createWandbTestServer, type WandbTestServer } from '@launch/testkit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWandbClient, PUSH_ID_KEY, type WandbClient } from './client.js';
import { createWandbEnqueueClient } from './enqueue.js';
import * as jobOps from './jobs/queries.js';
import * as ops from './operations.js';
import { OPERATION_POLICY, retryRuleFor } from './policy.js';
import { createWandbQueueSource } from './source.js';
import { captureLogger } from './test-support/capture-logger.js';

const ENTITY = 'tester';
const PROJECT = 'model-registry';
const where = { entity: ENTITY, project: PROJECT, queue: 'q' };
const SPEC = { resource: 'local-process', overrides: { entry_point: ['echo', 'hello'] } };

let server: WandbTestServer;
let client: WandbClient;
let logs: ReturnType<typeof captureLogger>;
const extra: Array<{ close(): Promise<void> }> = [];

const newClient = (baseUrl: string, retry: Record<string, number> = { baseDelayMs: 5, maxDelayMs: 20 }) =>
  createWandbClient({ apiKey: server.apiKey, baseUrl, retry, logger: logs, env: {} });

beforeEach(async () => {
  server = await createWandbTestServer({ queues: [{ entity: ENTITY, name: 'q' }] });
  logs = captureLogger();
  client = newClient(server.url);
});
afterEach(async () => {
  await client.close();
  for (const c of extra.splice(0)) await c.close();
  await server.close();
});

const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: unknown) => e as LaunchError,
  );
const push = (name: string) => client.pushToRunQueueByName({ ...where, runSpec: { name } });
const register = () =>
  client.createLaunchAgent({ entity: ENTITY, project: PROJECT, queueIds: [...server.state.queues.keys()], hostname: 'h', agentConfig: {}, version: 't' });
const pop = (agentId: string | null) => client.popFromRunQueue({ ...where, agentId });

describe('retry policy table', () => {
  it('names every operation the client sends, with its kind, and a recovery for every mutation not retried blindly', () => {
    // The queue client's operations and the job resolver's (artifact reads).
    const documents: string[] = [...Object.values(ops), ...Object.values(jobOps)];
    for (const document of documents) {
      const [, kind, name] = /^\s*(query|mutation)\s+(\w+)/.exec(document)!;
      const policy = (OPERATION_POLICY as Record<string, { kind: string; retry: string; recovery?: string; why: string }>)[name!];
      expect(policy, `policy for ${name}`).toBeDefined();
      expect(policy!.kind).toBe(kind);
      if (kind === 'query') expect(policy!.retry).toBe('any-failure');
      if (policy!.retry === 'unsent-only') expect(policy!.recovery).toBeTruthy();
      expect(policy!.why.length).toBeGreaterThan(5);
    }
    expect(Object.keys(OPERATION_POLICY).sort()).toEqual(documents.map((d) => /^\s*(?:query|mutation)\s+(\w+)/.exec(d)![1]).sort());
    expect(retryRuleFor('somethingNew', 'mutation somethingNew { x }')).toBe('unsent-only');
    expect(retryRuleFor('SomethingNew', 'query SomethingNew { x }')).toBe('any-failure');
    expect(retryRuleFor(undefined, undefined)).toBe('unsent-only');
  });
});

describe('pushToRunQueueByName under faults', () => {
  it('one enqueue whose answer is lost after W&B acted = exactly one item, and the caller gets its id', async () => {
    const enqueuer = createWandbEnqueueClient({ client, entity: ENTITY, env: {} });
    server.faults.add({ status: 'lost-reply', operation: 'pushToRunQueueByName' });
    const result = await enqueuer.enqueue({ queue: 'q', spec: SPEC });
    const items = server.itemsOf(ENTITY, 'q');
    expect(items).toHaveLength(1);
    expect(result.id).toBe(items[0]!.id);
    expect(result.runSpec).toEqual(SPEC);
    expect(items[0]!.runSpec[PUSH_ID_KEY]).toMatch(/^[0-9a-f-]{36}$/);
    expect(server.requests.filter((r) => r.operation === 'pushToRunQueueByName').map((r) => r.fault)).toEqual(['lost-reply']);
    expect(server.countRequests('GetRunQueueItems')).toBe(1);
    expect(logs.text()).toContain(`the queue read back holds the pushed item ${items[0]!.id}`);
  });

  it('stays at one item when every answer is lost', async () => {
    server.faults.add({ status: 'lost-reply', operation: 'pushToRunQueueByName', times: 5 });
    const result = await push('a');
    expect(server.itemsOf(ENTITY, 'q').map((i) => i.id)).toEqual([result.id]);
    expect(server.countRequests('pushToRunQueueByName')).toBe(1);
  });

  it('fails with "outcome unknown" naming what to look for when the queue cannot be read back, and never pushes twice', async () => {
    server.faults.add({ status: 'lost-reply', operation: 'pushToRunQueueByName' });
    server.faults.add({ status: 500, operation: 'GetRunQueueItems', times: 100 });
    const error = await failure(push('a'));
    expect(error.code).toBe('wandb.outcome_unknown');
    expect(error.message).toMatch(
      /^cannot tell whether W&B added the run to queue q in tester\/model-registry: W&B API pushToRunQueueByName: the request was sent but no usable answer came back \(other side closed \(UND_ERR_SOCKET\)\), so W&B may or may not have carried it out, and reading the queue back failed: W&B API GetRunQueueItems failed with HTTP 500 after retries/,
    );
    const items = server.itemsOf(ENTITY, 'q');
    expect(items).toHaveLength(1);
    // The hint names the id the created item carries.
    expect(error.hint).toContain(`"${PUSH_ID_KEY}": "${String(items[0]!.runSpec[PUSH_ID_KEY])}"`);
    expect(server.countRequests('pushToRunQueueByName')).toBe(1);
  });

  it('reads back and pushes again after a reset or a 502 that came before W&B acted: one item', async () => {
    server.faults.add({ status: 'reset', operation: 'pushToRunQueueByName' });
    server.faults.add({ status: 502, operation: 'pushToRunQueueByName' });
    const result = await push('a');
    expect(server.itemsOf(ENTITY, 'q').map((i) => i.id)).toEqual([result.id]);
    expect(server.requests.map((r) => `${r.operation}:${r.fault ?? r.status}`)).toEqual([
      'pushToRunQueueByName:reset',
      'GetRunQueueItems:200',
      'pushToRunQueueByName:502',
      'GetRunQueueItems:200',
      'pushToRunQueueByName:200',
    ]);
  });

  it('resends at once, without a read-back, on 408, 429 and 503 (W&B did not act)', async () => {
    server.faults.add({ status: 429, operation: 'pushToRunQueueByName', retryAfterSeconds: 0 });
    server.faults.add({ status: 503, operation: 'pushToRunQueueByName' });
    server.faults.add({ status: 408, operation: 'pushToRunQueueByName' });
    await push('a');
    expect(server.itemsOf(ENTITY, 'q')).toHaveLength(1);
    expect(server.countRequests('pushToRunQueueByName')).toBe(4);
    expect(server.countRequests('GetRunQueueItems')).toBe(0);
  });

  it('gives a push id of its own to a requeued spec that carries an old one', async () => {
    const first = await push('a');
    const old = server.state.items.get(first.id)!.runSpec;
    server.faults.add({ status: 'lost-reply', operation: 'pushToRunQueueByName' });
    const again = await client.pushToRunQueueByName({ ...where, runSpec: old });
    expect(again.id).not.toBe(first.id);
    expect(server.itemsOf(ENTITY, 'q')).toHaveLength(2);
    expect(server.state.items.get(again.id)!.runSpec[PUSH_ID_KEY]).not.toBe(old[PUSH_ID_KEY]);
  });

  it('does not push again when the queue holds the same spec without a push id (a server that dropped it): outcome unknown', async () => {
    // An item with the same content as the push but no push id, as a server dropping unknown keys would store it.
    server.state.push(server.state.userForKey(server.apiKey)!, { entity: ENTITY, project: PROJECT, queue: 'q', runSpec: { name: 'a' } });
    server.faults.add({ status: 'reset', operation: 'pushToRunQueueByName' });
    const error = await failure(push('a'));
    expect(error.code).toBe('wandb.outcome_unknown');
    expect(error.message).toContain('with the same spec but no push id');
    expect(server.itemsOf(ENTITY, 'q')).toHaveLength(1);
  });
});

describe('which network failures count as "never sent"', () => {
  it('resends a push after connection refused (never written), and the item is created once', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const late = newClient(`http://127.0.0.1:${port}`, { maxAttempts: 1000, baseDelayMs: 20, maxDelayMs: 50 });
    extra.push(late);
    const pushed = late.pushToRunQueueByName({ ...where, runSpec: { name: 'late' } });
    const waitForLog = async () => {
      const deadline = Date.now() + 10_000;
      while (!logs.lines.some((l) => l.includes('ECONNREFUSED') && l.includes('"sent":false'))) {
        if (Date.now() > deadline) throw new Error('no refused attempt was logged');
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await waitForLog();
    const up = await createWandbTestServer({ port, queues: [{ entity: ENTITY, name: 'q' }] });
    extra.push(up);
    const result = await pushed;
    expect(up.itemsOf(ENTITY, 'q').map((i) => i.id)).toEqual([result.id]);
    expect(up.countRequests('pushToRunQueueByName')).toBe(1);
  });

  it('resends a mutation after a TLS handshake failure (never written); the server saw no request', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wandb-policy-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        'k.pem',
        '-out',
        'c.pem',
      ],
      { cwd: dir, stdio: 'pipe' },
    );
    const tls = await createWandbTestServer({ tls: { key: readFileSync(join(dir, 'k.pem')), cert: readFileSync(join(dir, 'c.pem')) } });
    extra.push(tls);
    const untrusting = newClient(tls.url, { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 });
    extra.push(untrusting);
    const error = await failure(untrusting.pushToRunQueueByName({ ...where, runSpec: {} }));
    expect(error.code).toBe('wandb.network');
    expect(error.message).toContain('self-signed certificate');
    expect(logs.lines.filter((l) => l.includes('retrying') && l.includes('"sent":false'))).toHaveLength(2);
    expect(tls.countRequests()).toBe(0);
  });

  it.each([
    ['closed', (socket: net.Socket) => socket.destroy(), 'other side closed'],
    ['reset (RST)', (socket: net.Socket) => socket.resetAndDestroy(), 'ECONNRESET'],
  ])('treats a connection %s after the request was written as outcome unknown, and does not resend', async (_, hangUp, detail) => {
    // Accepts the connection, reads the request, hangs up without a word.
    const mute = net.createServer((socket) => socket.once('data', () => hangUp(socket)));
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
    extra.push({ close: () => new Promise<void>((resolve) => mute.close(() => resolve())) });
    const c = newClient(`http://127.0.0.1:${(mute.address() as net.AddressInfo).port}`, { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 });
    extra.push(c);
    const error = await failure(c.popFromRunQueue({ ...where, agentId: null }));
    expect(error.code).toBe('wandb.outcome_unknown');
    expect(error.message).toMatch(/^W&B API popFromRunQueue: the request was sent but no usable answer came back/);
    expect(error.message).toContain(detail);
    expect(logs.lines.filter((l) => l.includes('retrying'))).toHaveLength(0);
  });
});

describe('popFromRunQueue under faults', () => {
  it('one pop whose answer is lost returns the item it leased, and never leases a second one', async () => {
    const agentId = await register();
    const a = await push('a');
    const b = await push('b');
    server.faults.add({ status: 'lost-reply', operation: 'popFromRunQueue' });
    const popped = await pop(agentId);
    expect(popped).toEqual({ id: a.id, runSpec: { name: 'a' } });
    expect(server.state.items.get(a.id)).toMatchObject({ state: 'LEASED', leasedBy: agentId, pops: 1 });
    expect(server.state.items.get(b.id)).toMatchObject({ state: 'PENDING', pops: 0 });
    expect(server.countRequests('popFromRunQueue')).toBe(1);
    expect(await client.ackRunQueueItem(a.id, 'run-a', where)).toBe(true);
    expect((await pop(agentId))?.id).toBe(b.id);
    expect(await pop(agentId)).toBeNull();
    expect([...server.state.items.values()].map((i) => i.pops)).toEqual([1, 1]);
  });

  it('two concurrent pops, one answer lost: two distinct items, each handed out once', async () => {
    const agentId = await register();
    const ids = [(await push('a')).id, (await push('b')).id, (await push('c')).id];
    server.faults.add({ status: 'lost-reply', operation: 'popFromRunQueue' });
    const popped = await Promise.all([pop(agentId), pop(agentId)]);
    const got = popped.map((p) => p!.id).sort();
    expect(new Set(got).size).toBe(2);
    expect(got).toEqual([ids[0]!, ids[1]!].sort());
    expect(server.state.items.get(ids[2]!)).toMatchObject({ state: 'PENDING', pops: 0 });
    expect(server.countRequests('popFromRunQueue')).toBe(2);
  });

  it('does not resend a pop after a 500; nothing leased, so the call fails and the next pop takes the item', async () => {
    const agentId = await register();
    const a = await push('a');
    server.faults.add({ status: 500, operation: 'popFromRunQueue' });
    const error = await failure(pop(agentId));
    expect(error.code).toBe('wandb.outcome_unknown');
    expect(error.message).toContain(`the read-back found no item leased to agent ${agentId}`);
    expect(server.state.items.get(a.id)).toMatchObject({ state: 'PENDING', pops: 0 });
    expect((await pop(agentId))?.id).toBe(a.id);
    expect(server.state.items.get(a.id)!.pops).toBe(1);
  });

  it('without an agent id, a lost pop fails clearly and its item comes back only when the lease expires', async () => {
    let now = 1_000_000;
    await server.close();
    server = await createWandbTestServer({ queues: [{ entity: ENTITY, name: 'q' }], leaseTimeoutMs: 60_000, now: () => now });
    await client.close();
    client = newClient(server.url);
    const a = await push('a');
    server.faults.add({ status: 'lost-reply', operation: 'popFromRunQueue' });
    const error = await failure(pop(null));
    expect(error.code).toBe('wandb.outcome_unknown');
    expect(error.hint).toContain('goes back to queue q when its lease expires');
    expect(server.state.items.get(a.id)).toMatchObject({ state: 'LEASED', pops: 1 });
    expect(await pop(null)).toBeNull();
    now += 60_000;
    expect((await pop(null))?.id).toBe(a.id);
    expect(server.state.items.get(a.id)!.pops).toBe(2);
  });
});

describe('ack and fail under "acted, then lost the reply"', () => {
  it('an ack retried after a lost answer is reported done, and the item is claimed once with that run', async () => {
    const source = createWandbQueueSource({ client, entity: ENTITY, env: {} });
    const { id: agentId } = await source.register({ queues: ['q'], hostname: 'h', version: 't', config: {} });
    const a = await push('a');
    const item = (await source.pop('q', agentId))!;
    server.faults.add({ status: 'lost-reply', operation: 'ackRunQueueItem' });
    await source.ack(item, 'run-a');
    expect(server.state.items.get(a.id)).toMatchObject({ state: 'CLAIMED', runName: 'run-a', pops: 1 });
    expect(server.requests.filter((r) => r.operation === 'ackRunQueueItem').map((r) => r.fault ?? r.status)).toEqual(['lost-reply', 200]);
    expect([...server.state.runs.values()].map((r) => r.name)).toEqual(['run-a']);
    // Another run name is still refused: the read-back does not hand out other agents' claims.
    expect(await client.ackRunQueueItem(a.id, 'run-b', where)).toBe(false);
    await expect(source.ack(item, 'run-b')).rejects.toThrow(/refused to acknowledge/);
  });

  it('a fail retried after a lost answer leaves the item FAILED once with the message', async () => {
    const a = await push('a');
    await pop(null);
    server.faults.add({ status: 'lost-reply', operation: 'failRunQueueItem' });
    expect(await client.failRunQueueItem(a.id, { message: 'exit 3', stage: 'run' })).toBe(true);
    expect(server.state.items.get(a.id)).toMatchObject({ state: 'FAILED', failure: { message: 'exit 3', stage: 'run', filePaths: [] } });
    expect(server.requests.filter((r) => r.operation === 'failRunQueueItem').map((r) => r.fault ?? r.status)).toEqual(['lost-reply', 200]);
  });

  it('createRunQueue after a lost answer returns the queue it created, once', async () => {
    server.faults.add({ status: 'lost-reply', operation: 'createRunQueue' });
    const id = await client.createRunQueue(ENTITY, PROJECT, 'default');
    expect(server.state.projectQueues(ENTITY, PROJECT).map((q) => [q.name, q.id])).toEqual([
      ['q', expect.any(String)],
      ['default', id],
    ]);
    expect(server.countRequests('createRunQueue')).toBe(1);
  });
});
