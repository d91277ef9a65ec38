import { makeInformer, Watch, type V1ConfigMap, type V1Job } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startKubeTestServer, type KubeTestServer } from './server.js';
import { clientsFor, eventually, jobManifest } from './test-helpers.js';

let server: KubeTestServer;
let c: ReturnType<typeof clientsFor>;

beforeEach(async () => {
  server = await startKubeTestServer({ kubelet: { stepDelayMs: 5 } });
  c = clientsFor(server);
});
afterEach(async () => {
  await server.close();
});

interface Seen {
  type: string;
  name?: string;
  rv?: string;
  code?: number;
  object: Record<string, any>;
}

async function startWatch(path: string, query: Record<string, string | number | boolean | undefined>) {
  const events: Seen[] = [];
  let done: unknown = 'open';
  const controller = await new Watch(c.kc).watch(
    path,
    query,
    (type, object) => events.push({ type, name: object?.metadata?.name, rv: object?.metadata?.resourceVersion, code: object?.code, object }),
    (err) => {
      done = err;
    },
  );
  return { events, controller, done: () => done };
}

const cm = (name: string, labels: Record<string, string> = {}): V1ConfigMap => ({ metadata: { name, labels }, data: { a: '1' } });

describe('kube test server: watch', () => {
  it('streams ADDED, MODIFIED and DELETED in order, filtered by label selector', async () => {
    const w = await startWatch('/api/v1/namespaces/default/configmaps', { labelSelector: 'app=x' });
    await eventually(() => server.openWatches() === 1);
    await c.core.createNamespacedConfigMap({ namespace: 'default', body: cm('one', { app: 'x' }) });
    await c.core.createNamespacedConfigMap({ namespace: 'default', body: cm('other', { app: 'y' }) });
    await c.core.replaceNamespacedConfigMap({ name: 'one', namespace: 'default', body: { ...cm('one', { app: 'x' }), data: { a: '2' } } });
    await c.core.deleteNamespacedConfigMap({ name: 'one', namespace: 'default' });
    await eventually(() => w.events.length >= 3);
    expect(w.events.map((e) => [e.type, e.name])).toEqual([
      ['ADDED', 'one'],
      ['MODIFIED', 'one'],
      ['DELETED', 'one'],
    ]);
    const rvs = w.events.map((e) => Number(e.rv));
    expect(rvs).toEqual([...rvs].sort((a, b) => a - b));
    expect(w.events[1]!.object.data).toEqual({ a: '2' });
    w.controller.abort();
    await eventually(() => server.openWatches() === 0);
  });

  it('sends objects leaving the selector as DELETED and entering it as ADDED', async () => {
    await c.core.createNamespacedConfigMap({ namespace: 'default', body: cm('m', { app: 'x' }) });
    const list = await c.core.listNamespacedConfigMap({ namespace: 'default' });
    const w = await startWatch('/api/v1/namespaces/default/configmaps', {
      labelSelector: 'app=x',
      resourceVersion: list.metadata!.resourceVersion,
    });
    await c.core.replaceNamespacedConfigMap({ name: 'm', namespace: 'default', body: cm('m', { app: 'z' }) });
    await c.core.replaceNamespacedConfigMap({ name: 'm', namespace: 'default', body: cm('m', { app: 'x' }) });
    await eventually(() => w.events.length >= 2);
    expect(w.events.map((e) => e.type)).toEqual(['DELETED', 'ADDED']);
    w.controller.abort();
  });

  it('resumes from a resourceVersion, replaying what happened after it', async () => {
    const first = await c.core.createNamespacedConfigMap({ namespace: 'default', body: cm('a') });
    await c.core.createNamespacedConfigMap({ namespace: 'default', body: cm('b') });
    await c.core.deleteNamespacedConfigMap({ name: 'a', namespace: 'default' });
    const w = await startWatch('/api/v1/namespaces/default/configmaps', { resourceVersion: first.metadata!.resourceVersion });
    await eventually(() => w.events.length >= 2);
    expect(w.events.map((e) => [e.type, e.name])).toEqual([
      ['ADDED', 'b'],
      ['DELETED', 'a'],
    ]);
    w.controller.abort();
  });

  it('without a resourceVersion starts with synthetic ADDED events for existing objects', async () => {
    await c.core.createNamespacedConfigMap({ namespace: 'default', body: cm('a') });
    const w = await startWatch('/api/v1/namespaces/default/configmaps', {});
    await eventually(() => w.events.length >= 1);
    expect(w.events[0]).toMatchObject({ type: 'ADDED', name: 'a' });
    w.controller.abort();
  });

  it('answers a stale resourceVersion after compaction with an ERROR event carrying 410 Expired, then ends', async () => {
    const a = await c.core.createNamespacedConfigMap({ namespace: 'default', body: cm('a') });
    await c.core.createNamespacedConfigMap({ namespace: 'default', body: cm('b') });
    server.compact();
    const w = await startWatch('/api/v1/namespaces/default/configmaps', { resourceVersion: a.metadata!.resourceVersion });
    await eventually(() => w.done() !== 'open');
    expect(w.events).toHaveLength(1);
    expect(w.events[0]!.type).toBe('ERROR');
    expect(w.events[0]!.object).toMatchObject({ kind: 'Status', code: 410, reason: 'Expired' });
    expect(String(w.events[0]!.object.message)).toMatch(/^too old resource version: \d+ \(\d+\)$/);
    // A list at an exact, compacted revision is 410 too.
    const res = await fetch(`${server.url}/api/v1/namespaces/default/configmaps?resourceVersion=${a.metadata!.resourceVersion}&resourceVersionMatch=Exact`, {
      headers: { authorization: `Bearer ${server.token}` },
    });
    expect(res.status).toBe(410);
    expect(await res.json()).toMatchObject({ kind: 'Status', reason: 'Expired', code: 410 });
  });

  it('serves an exact list at an older revision from history', async () => {
    const a = await c.core.createNamespacedConfigMap({ namespace: 'default', body: cm('a') });
    await c.core.createNamespacedConfigMap({ namespace: 'default', body: cm('b') });
    await c.core.deleteNamespacedConfigMap({ name: 'a', namespace: 'default' });
    const res = await fetch(`${server.url}/api/v1/namespaces/default/configmaps?resourceVersion=${a.metadata!.resourceVersion}&resourceVersionMatch=Exact`, {
      headers: { authorization: `Bearer ${server.token}` },
    });
    const body = (await res.json()) as { items: Array<{ metadata: { name: string } }>; metadata: { resourceVersion: string } };
    expect(body.items.map((i) => i.metadata.name)).toEqual(['a']);
    expect(body.metadata.resourceVersion).toBe(a.metadata!.resourceVersion);
  });

  it('ends the stream at timeoutSeconds, with a last BOOKMARK when bookmarks are allowed', async () => {
    const w = await startWatch('/api/v1/namespaces/default/configmaps', {
      timeoutSeconds: 1,
      allowWatchBookmarks: true,
      resourceVersion: server.resourceVersion(),
    });
    await eventually(() => w.done() !== 'open', 3000);
    expect(w.done()).toBeNull();
    expect(w.events.at(-1)).toMatchObject({ type: 'BOOKMARK' });
    expect(w.events.at(-1)!.object).toMatchObject({ kind: 'ConfigMap', apiVersion: 'v1' });
  });

  it('breakWatches drops the connection; a restarted informer resumes from its resourceVersion and misses nothing', async () => {
    const informer = makeInformer(c.kc, '/apis/batch/v1/namespaces/default/jobs', () => c.batch.listNamespacedJob({ namespace: 'default' }));
    const added: string[] = [];
    const deleted: string[] = [];
    let connects = 0;
    informer.on('add', (j) => added.push(j.metadata!.name!));
    informer.on('delete', (j) => deleted.push(j.metadata!.name!));
    informer.on('connect', () => connects++);
    // client-node's informer stops on a dropped connection; restarting it is the documented pattern.
    informer.on('error', () => void informer.start());
    server.kubelet.setDefault([{ running: true }]);
    await informer.start();
    await c.batch.createNamespacedJob({ namespace: 'default', body: jobManifest('first') as V1Job });
    await eventually(() => added.includes('first'));
    server.breakWatches();
    await c.batch.createNamespacedJob({ namespace: 'default', body: jobManifest('second') as V1Job });
    await eventually(() => added.includes('second'));
    expect(connects).toBeGreaterThanOrEqual(2);
    // The reconnect resumed from a resourceVersion rather than relisting.
    const watchCalls = server.requests.filter((r) => r.watch && r.path.endsWith('/jobs'));
    expect(watchCalls.length).toBeGreaterThanOrEqual(2);
    expect(watchCalls.at(-1)!.query.resourceVersion).not.toBe('');
    await informer.stop();
  });

  it('an informer relists after a 410: history compacted while it was disconnected', async () => {
    const informer = makeInformer(c.kc, '/api/v1/namespaces/default/configmaps', () => c.core.listNamespacedConfigMap({ namespace: 'default' }));
    const added: string[] = [];
    const errors: unknown[] = [];
    informer.on('add', (o) => added.push(o.metadata!.name!));
    informer.on('error', (e) => errors.push(e));
    await informer.start();
    await c.core.createNamespacedConfigMap({ namespace: 'default', body: cm('before') });
    await eventually(() => added.includes('before'));
    server.breakWatches();
    await eventually(() => errors.length === 1);
    // While disconnected, something changes and the history is compacted past the informer's resourceVersion.
    await c.core.createNamespacedConfigMap({ namespace: 'default', body: cm('missed') });
    server.compact();
    const listsBefore = server.requests.filter((r) => !r.watch && r.path.endsWith('/configmaps')).length;
    await informer.start();
    await eventually(() => added.includes('missed'));
    const after = server.requests.slice(-3).map((r) => [r.watch, r.status]);
    expect(server.requests.filter((r) => !r.watch && r.path.endsWith('/configmaps')).length).toBe(listsBefore + 1);
    expect(after).toContainEqual([true, 200]);
    await informer.stop();
  });
});
