import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { LaunchError } from '@launch/core';
import { createWandbTestServer, type WandbTestServer } from '@launch/testkit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createWandbClient, type WandbClient } from './client.js';
import { captureLogger, errorText } from './test-support/capture-logger.js';

const ENTITY = 'tester';
const PROJECT = 'model-registry';

let server: WandbTestServer;
let client: WandbClient;
let logs: ReturnType<typeof captureLogger>;

beforeEach(async () => {
  server = await createWandbTestServer({ queues: [{ entity: ENTITY, name: 'q' }] });
  logs = captureLogger();
  client = createWandbClient({
    apiKey: server.apiKey,
    baseUrl: server.url,
    keySource: 'env',
    retry: { baseDelayMs: 5, maxDelayMs: 20 },
    logger: logs,
    env: {},
  });
});
afterEach(async () => {
  await client.close();
  await server.close();
});

const opsSeen = () => server.requests.map((r) => `${r.operation}:${r.status}`);

describe('W&B client against the test server', () => {
  it('authenticates with HTTP basic auth as user api, and never sends the key in the clear', async () => {
    expect(await client.viewer()).toMatchObject({ username: 'tester', entity: 'tester' });
    expect(server.requests[0]!.auth).toBe('Basic api');
  });

  it('pushes, pops, acks, fails and warns items with W&B argument names', async () => {
    const pushed = await client.pushToRunQueueByName({ entity: ENTITY, project: PROJECT, queue: 'q', runSpec: { job: 'a/b/c:latest' }, priority: 1 });
    expect(pushed.runSpec).toEqual({ job: 'a/b/c:latest' });
    const popped = await client.popFromRunQueue({ entity: ENTITY, project: PROJECT, queue: 'q' });
    expect(popped).toEqual({ id: pushed.id, runSpec: { job: 'a/b/c:latest' } });
    expect(await client.ackRunQueueItem(pushed.id, 'run-1')).toBe(true);
    expect(await client.ackRunQueueItem(pushed.id, 'run-1')).toBe(false);
    expect(await client.updateRunQueueItemWarning(pushed.id, { message: 'pod pending', stage: 'Kubernetes' })).toBe(true);
    expect(await client.failRunQueueItem(pushed.id, { message: 'exit 3', stage: 'run', filePaths: ['a/error.log'] })).toBe(true);
    const item = server.state.items.get(pushed.id)!;
    expect(item).toMatchObject({ state: 'FAILED', runName: 'run-1', failure: { message: 'exit 3', stage: 'run', filePaths: ['a/error.log'] } });
    expect(item.warnings).toEqual([{ message: 'pod pending', stage: 'Kubernetes', filePaths: [] }]);
    expect(await client.popFromRunQueue({ entity: ENTITY, project: PROJECT, queue: 'q' })).toBeNull();
  });

  it('reads run state and the stopped flag, null/false for an unknown run', async () => {
    expect(await client.runState({ entity: ENTITY, project: 'p', runId: 'nope' })).toBeNull();
    expect(await client.runStopped({ entity: ENTITY, project: 'p', runId: 'nope' })).toBe(false);
    server.state.setRun(ENTITY, 'p', 'r1', { state: 'running', stopped: true });
    expect(await client.runState({ entity: ENTITY, project: 'p', runId: 'r1' })).toBe('running');
    expect(await client.runStopped({ entity: ENTITY, project: 'p', runId: 'r1' })).toBe(true);
  });

  it('retries a query on 429 (waiting for Retry-After), 5xx and dropped connections', async () => {
    server.faults.add({ status: 429, operation: 'Viewer', retryAfterSeconds: 1 });
    server.faults.add({ status: 502, operation: 'Viewer' });
    server.faults.add({ status: 'reset', operation: 'Viewer' });
    server.faults.add({ status: 500, operation: 'Viewer' });
    const started = Date.now();
    expect(await client.viewer()).toMatchObject({ username: 'tester' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(opsSeen()).toEqual(['Viewer:429', 'Viewer:502', 'Viewer:-1', 'Viewer:500', 'Viewer:200']);
    const retries = logs.lines.filter((l) => l.includes('retrying'));
    expect(retries).toHaveLength(4);
    expect(retries[0]).toContain('"retryAfter":true');
  });

  it('gives up after maxAttempts with an error naming the operation and the status', async () => {
    server.faults.add({ status: 503, times: 10 });
    const short = createWandbClient({ apiKey: server.apiKey, baseUrl: server.url, retry: { maxAttempts: 3, baseDelayMs: 1 }, env: {} });
    const error = await short.launchAgent('x').catch((e: unknown) => e);
    await short.close();
    expect(LaunchError.isInstance(error)).toBe(true);
    expect((error as LaunchError).code).toBe('wandb.http');
    expect((error as LaunchError).message).toBe('W&B API LaunchAgent failed with HTTP 503 after retries: injected fault 503');
    expect((error as LaunchError).retryable).toBe(true);
    expect(server.requests.filter((r) => r.operation === 'LaunchAgent')).toHaveLength(3);
  });

  it('surfaces GraphQL errors with the operation name and does not retry them', async () => {
    const error = await client.popFromRunQueue({ entity: ENTITY, project: PROJECT, queue: 'missing' }).catch((e: unknown) => e);
    expect((error as LaunchError).code).toBe('wandb.graphql');
    expect((error as LaunchError).message).toBe('W&B API popFromRunQueue failed: run queue missing not found in tester/model-registry');
    expect(server.requests.filter((r) => r.operation === 'popFromRunQueue')).toHaveLength(1);
  });

  it('reports a wrong key clearly, without the key, in the error and the logs', async () => {
    const secret = 'wrong-secret-key-aaaaaaaaaaaaaaaaaaaaaaaaa';
    const bad = createWandbClient({ apiKey: secret, baseUrl: server.url, keySource: 'netrc', logger: logs, env: {} });
    const error = await bad.viewer().catch((e: unknown) => e);
    await bad.close();
    expect((error as LaunchError).code).toBe('wandb.unauthorized');
    expect((error as LaunchError).message).toBe(`W&B at ${server.url} rejected the API key from ~/.netrc (HTTP 401 on Viewer)`);
    const basic = Buffer.from(`api:${secret}`).toString('base64');
    for (const text of [errorText(error), logs.text()]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(basic);
    }
  });

  it('redacts the key from messages it sends to the queue', async () => {
    const pushed = await client.pushToRunQueueByName({ entity: ENTITY, project: PROJECT, queue: 'q', runSpec: {} });
    await client.failRunQueueItem(pushed.id, { message: `run failed: WANDB_API_KEY=${server.apiKey} and ${server.apiKey}`, stage: 'run' });
    const message = server.state.items.get(pushed.id)!.failure!.message!;
    expect(message).not.toContain(server.apiKey);
    expect(message).toBe('run failed: WANDB_API_KEY=[REDACTED] and [REDACTED]');
  });

  it('reports an unreachable server as a network error naming the operation and base URL', async () => {
    const port = Number(new URL(server.url).port);
    await server.close();
    const offline = createWandbClient({ apiKey: server.apiKey, baseUrl: `http://127.0.0.1:${port}`, retry: { maxAttempts: 2, baseDelayMs: 1 }, env: {} });
    const error = await offline.viewer().catch((e: unknown) => e);
    await offline.close();
    expect((error as LaunchError).code).toBe('wandb.network');
    expect((error as LaunchError).message).toMatch(new RegExp(`^cannot reach W&B at http://127.0.0.1:${port} during Viewer: .*ECONNREFUSED`));
    server = await createWandbTestServer();
  });

  it('rejects an answer of the wrong shape with a clear error', async () => {
    const odd = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ data: { popFromRunQueue: { runQueueItemId: null, runSpec: '{}' } } }));
    });
    odd.listen(0, '127.0.0.1');
    await once(odd, 'listening');
    const { port } = odd.address() as AddressInfo;
    const c = createWandbClient({ apiKey: server.apiKey, baseUrl: `http://127.0.0.1:${port}`, env: {} });
    const error = await c.popFromRunQueue({ entity: ENTITY, project: PROJECT, queue: 'q' }).catch((e: unknown) => e);
    await c.close();
    odd.close();
    expect((error as LaunchError).code).toBe('wandb.bad_response');
    expect((error as LaunchError).message).toMatch(/^W&B API popFromRunQueue returned an unexpected answer: popFromRunQueue\.runQueueItemId: /);
  });

  it('points at /graphql in the hint when the base URL leads elsewhere', async () => {
    const error = await createWandbClient({ apiKey: server.apiKey, baseUrl: `${server.url}/elsewhere`, retry: { maxAttempts: 1 }, env: {} })
      .viewer()
      .catch((e: unknown) => e);
    expect((error as LaunchError).code).toBe('wandb.http');
    expect((error as LaunchError).message).toContain('HTTP 404');
    expect((error as LaunchError).hint).toContain('/graphql');
  });

  it('refuses a missing key without echoing anything', () => {
    expect(() => createWandbClient({ apiKey: '  ' })).toThrow(/no W&B API key was given/);
  });

  it('stops retrying at once when closed', async () => {
    server.faults.add({ status: 503, times: 100 });
    const slow = createWandbClient({ apiKey: server.apiKey, baseUrl: server.url, retry: { baseDelayMs: 60_000, maxDelayMs: 60_000 }, env: {} });
    const pending = slow.viewer().catch((e: unknown) => e);
    await server.waitFor(() => server.requests.length >= 1, 5000, 'the first attempt');
    const started = Date.now();
    await slow.close();
    const error = await pending;
    expect(Date.now() - started).toBeLessThan(2000);
    expect((error as LaunchError).code).toBe('wandb.closed');
  });
});
