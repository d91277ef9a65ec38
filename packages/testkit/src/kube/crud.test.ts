import { ApiException, PatchStrategy, setHeaderOptions, type V1Job } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startKubeTestServer, type KubeTestServer } from './server.js';
import { clientsFor, jobManifest } from './test-helpers.js';

let server: KubeTestServer;
let c: ReturnType<typeof clientsFor>;

beforeEach(async () => {
  server = await startKubeTestServer({ namespaces: ['default', 'ml'] });
  c = clientsFor(server);
});
afterEach(async () => {
  await server.close();
});

async function apiError(promise: Promise<unknown>): Promise<{ code: number; body: Record<string, unknown> }> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ApiException);
    const e = error as ApiException<unknown>;
    const body = typeof e.body === 'string' ? JSON.parse(e.body) : e.body;
    return { code: e.code, body: body as Record<string, unknown> };
  }
  throw new Error('expected the call to fail');
}

describe('kube test server: CRUD with the real client', () => {
  it('creates, reads, lists, patches, replaces and deletes a ConfigMap', async () => {
    const created = await c.core.createNamespacedConfigMap({
      namespace: 'ml',
      body: { metadata: { name: 'settings', labels: { team: 'a' } }, data: { k: 'v' } },
    });
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.metadata?.namespace).toBe('ml');
    expect(created.metadata?.creationTimestamp).toBeInstanceOf(Date);
    const rv1 = Number(created.metadata?.resourceVersion);
    const read = await c.core.readNamespacedConfigMap({ name: 'settings', namespace: 'ml' });
    expect(read.data).toEqual({ k: 'v' });

    const patched = await c.core.patchNamespacedConfigMap(
      { name: 'settings', namespace: 'ml', body: { data: { k: 'w', extra: 'x' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(patched.data).toEqual({ k: 'w', extra: 'x' });
    expect(Number(patched.metadata?.resourceVersion)).toBeGreaterThan(rv1);

    // The client's default patch type is JSON patch.
    const jsonPatched = await c.core.patchNamespacedConfigMap({
      name: 'settings',
      namespace: 'ml',
      body: [{ op: 'remove', path: '/data/extra' }],
    });
    expect(jsonPatched.data).toEqual({ k: 'w' });

    const replaced = await c.core.replaceNamespacedConfigMap({
      name: 'settings',
      namespace: 'ml',
      body: { ...jsonPatched, data: { only: '1' } },
    });
    expect(replaced.data).toEqual({ only: '1' });
    // A stale resourceVersion on replace is a 409 Conflict.
    const stale = await apiError(c.core.replaceNamespacedConfigMap({ name: 'settings', namespace: 'ml', body: { ...jsonPatched, data: {} } }));
    expect(stale.code).toBe(409);
    expect(stale.body.reason).toBe('Conflict');

    const list = await c.core.listNamespacedConfigMap({ namespace: 'ml' });
    expect(list.items.map((i) => i.metadata?.name)).toEqual(['settings']);
    expect(Number(list.metadata?.resourceVersion)).toBeGreaterThanOrEqual(Number(replaced.metadata?.resourceVersion));

    await c.core.deleteNamespacedConfigMap({ name: 'settings', namespace: 'ml' });
    const missing = await apiError(c.core.readNamespacedConfigMap({ name: 'settings', namespace: 'ml' }));
    expect(missing.code).toBe(404);
    expect(missing.body).toMatchObject({ kind: 'Status', reason: 'NotFound', message: 'configmaps "settings" not found' });
  });

  it('honours generateName with a 5-character suffix and answers 409 AlreadyExists', async () => {
    const a = await c.batch.createNamespacedJob({
      namespace: 'default',
      body: { ...jobManifest('x'), metadata: { generateName: 'launch-entity-project-' } } as V1Job,
    });
    expect(a.metadata?.name).toMatch(/^launch-entity-project-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    const again = await apiError(c.batch.createNamespacedJob({ namespace: 'default', body: jobManifest(a.metadata!.name!) as V1Job }));
    expect(again.code).toBe(409);
    expect(again.body).toMatchObject({
      reason: 'AlreadyExists',
      message: `jobs.batch "${a.metadata!.name}" already exists`,
      details: { name: a.metadata!.name, group: 'batch', kind: 'jobs' },
    });
  });

  it('answers 404 for a missing namespace, a missing object and an unknown path', async () => {
    const ns = await apiError(c.batch.createNamespacedJob({ namespace: 'nope', body: jobManifest('a') as V1Job }));
    expect(ns.code).toBe(404);
    expect(ns.body.message).toBe('namespaces "nope" not found');
    const job = await apiError(c.batch.deleteNamespacedJob({ name: 'ghost', namespace: 'default' }));
    expect(job.body.message).toBe('jobs.batch "ghost" not found');
    const res = await fetch(`${server.url}/apis/nonsense.io`, { headers: { authorization: `Bearer ${server.token}` } });
    expect(res.status).toBe(404);
  });

  it('filters lists by label selector (=, !=, in, notin, exists, !key) and field selector', async () => {
    const mk = (name: string, labels: Record<string, string>) =>
      c.core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name, labels } } });
    await mk('a', { tier: 'web', env: 'prod' });
    await mk('b', { tier: 'db', env: 'dev' });
    await mk('c', { tier: 'cache' });
    const names = async (q: { labelSelector?: string; fieldSelector?: string }) =>
      (await c.core.listNamespacedConfigMap({ namespace: 'default', ...q })).items.map((i) => i.metadata!.name).sort();
    expect(await names({ labelSelector: 'tier=web' })).toEqual(['a']);
    expect(await names({ labelSelector: 'tier!=web' })).toEqual(['b', 'c']);
    expect(await names({ labelSelector: 'tier in (web, db)' })).toEqual(['a', 'b']);
    expect(await names({ labelSelector: 'tier notin (web,db)' })).toEqual(['c']);
    expect(await names({ labelSelector: 'env' })).toEqual(['a', 'b']);
    expect(await names({ labelSelector: '!env' })).toEqual(['c']);
    expect(await names({ labelSelector: 'env,tier=db' })).toEqual(['b']);
    expect(await names({ fieldSelector: 'metadata.name=c' })).toEqual(['c']);
    expect(await names({ fieldSelector: 'metadata.name!=c' })).toEqual(['a', 'b']);
    const bad = await apiError(c.core.listNamespacedConfigMap({ namespace: 'default', fieldSelector: 'spec.foo=1' }));
    expect(bad.code).toBe(400);
    expect(bad.body.message).toBe('field label not supported: spec.foo');
  });

  it('pages lists with limit and continue', async () => {
    for (const n of ['a', 'b', 'c']) await c.core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: n }, stringData: { k: n } } });
    const first = await c.core.listNamespacedSecret({ namespace: 'default', limit: 2 });
    expect(first.items.map((i) => i.metadata!.name)).toEqual(['a', 'b']);
    expect(first.items[0]!.data).toEqual({ k: Buffer.from('a').toString('base64') });
    expect(first.items[0]!.type).toBe('Opaque');
    const second = await c.core.listNamespacedSecret({ namespace: 'default', limit: 2, _continue: first.metadata!._continue! });
    expect(second.items.map((i) => i.metadata!.name)).toEqual(['c']);
    expect(second.metadata?._continue).toBeUndefined();
  });

  it('requires the bearer token from the kubeconfig', async () => {
    const res = await fetch(`${server.url}/api/v1/namespaces`);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ kind: 'Status', code: 401, reason: 'Unauthorized' });
    expect(server.requests.at(-1)).toMatchObject({ path: '/api/v1/namespaces', status: 401 });
    expect(server.requests.at(-1)?.user).toBeUndefined();
  });

  it('injects an RBAC 403 naming the verb, resource, group and namespace', async () => {
    server.injectFault({ method: 'POST', path: '/apis/batch/v1/namespaces/ml/jobs', status: 403, times: 1 });
    const denied = await apiError(c.batch.createNamespacedJob({ namespace: 'ml', body: jobManifest('j') as V1Job }));
    expect(denied.code).toBe(403);
    expect(denied.body).toMatchObject({
      reason: 'Forbidden',
      message:
        'jobs.batch is forbidden: User "system:serviceaccount:default:launch-agent" cannot create resource "jobs" in API group "batch" in the namespace "ml"',
      details: { group: 'batch', kind: 'jobs' },
    });
    // times: 1 — the next request goes through.
    await c.batch.createNamespacedJob({ namespace: 'ml', body: jobManifest('j') as V1Job });
    server.injectFault({ path: /\/pods$/, status: 403 });
    const list = await apiError(c.core.listNamespacedPod({ namespace: 'ml' }));
    expect(list.body.message).toBe(
      'pods is forbidden: User "system:serviceaccount:default:launch-agent" cannot list resource "pods" in API group "" in the namespace "ml"',
    );
    server.clearFaults();
    server.injectFault({ status: 429, times: 1 });
    const throttled = await apiError(c.core.listNamespacedPod({ namespace: 'ml' }));
    expect(throttled.code).toBe(429);
    expect(throttled.body.reason).toBe('TooManyRequests');
  });

  it('records every request in order with method, path, query and status', async () => {
    const before = server.requests.length;
    await c.core.listNamespacedPod({ namespace: 'default', labelSelector: 'a=b' });
    await apiError(c.core.readNamespacedPod({ name: 'x', namespace: 'default' }));
    const recent = server.requests.slice(before);
    expect(recent.map((r) => [r.method, r.path, r.status])).toEqual([
      ['GET', '/api/v1/namespaces/default/pods', 200],
      ['GET', '/api/v1/namespaces/default/pods/x', 404],
    ]);
    expect(recent[0]!.query).toEqual({ labelSelector: 'a=b' });
    expect(recent[0]!.user).toBe('system:serviceaccount:default:launch-agent');
  });
});
