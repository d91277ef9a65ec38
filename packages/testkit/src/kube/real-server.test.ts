import { Watch, type KubeConfig, type V1Job, type V1ManagedFieldsEntry } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { KubeTestServer, KubeTestServerOptions } from './server.js';
import { eventually, jobManifest, useKubeServer } from './test-helpers.js';

// Each block covers one difference found by running the Kubernetes runner against a real kube-apiserver (issue 7).

let server: KubeTestServer | undefined;
const fixture = useKubeServer();
async function setup(options: KubeTestServerOptions = {}) {
  const made = await fixture.setup(options);
  server = made.server;
  return made;
}

/** A raw request with the server's token, for what the typed client hides: status codes, headers, text bodies. */
async function raw(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${server!.url}${path}`, {
    method,
    headers: {
      Authorization: `Bearer ${server!.token}`,
      ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

type Obj = { metadata: Record<string, any>; status?: Record<string, any>; spec?: Record<string, any>; [k: string]: any };
const jobs = '/apis/batch/v1/namespaces/default/jobs';
const configmaps = '/api/v1/namespaces/default/configmaps';
const secrets = '/api/v1/namespaces/default/secrets';

/** Collects watch events for a collection until stopped. */
async function watchEvents(kc: KubeConfig, path: string) {
  const events: Array<{ type: string; object: Obj }> = [];
  const watch = new Watch(kc);
  const controller = await watch.watch(
    path,
    {},
    (type, object) => events.push({ type, object }),
    () => undefined,
  );
  return { events, stop: () => controller.abort() };
}

describe('kube test server: API groups that are not installed', () => {
  it('answers a plain-text 404 page not found for a group that is not installed, and leaves it out of discovery', async () => {
    await setup();
    const missing = await raw('GET', '/apis/example.com/v1/namespaces/default/widgets');
    expect(missing.status).toBe(404);
    expect(missing.text).toBe('404 page not found\n');
    expect(missing.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect((await raw('GET', '/apis/example.com')).text).toBe('404 page not found\n');
    expect((await raw('GET', '/apis/example.com/v1')).text).toBe('404 page not found\n');
    expect((await raw('GET', '/no/such/path')).text).toBe('404 page not found\n');
    const groups = (await raw('GET', '/apis')).json.groups.map((g: { name: string }) => g.name);
    expect(groups).toEqual(expect.arrayContaining(['batch', 'apps', 'batch.volcano.sh', 'kubeflow.org', 'jobset.x-k8s.io']));
    expect(groups).not.toContain('example.com');
  });

  it('answers a JSON NotFound Status for an unknown resource inside a built-in group-version', async () => {
    await setup();
    const res = await raw('GET', '/apis/batch/v1/namespaces/default/cronjobz');
    expect(res.status).toBe(404);
    expect(res.json).toMatchObject({
      kind: 'Status',
      reason: 'NotFound',
      message: 'the server could not find the requested resource',
      details: { causes: [{ reason: 'UnexpectedServerResponse', message: '404: Page Not Found' }] },
    });
  });

  it('leaves Volcano, Kubeflow and JobSet out with defaultCustomResources: false, and installs a CRD on demand', async () => {
    const { custom } = await setup({ defaultCustomResources: false });
    const volcano = await raw('GET', '/apis/batch.volcano.sh/v1alpha1/namespaces/default/jobs');
    expect(volcano.status).toBe(404);
    expect(volcano.text).toBe('404 page not found\n');
    expect((await raw('GET', '/apis')).json.groups.map((g: { name: string }) => g.name)).not.toContain('batch.volcano.sh');
    await expect(
      custom.listNamespacedCustomObject({ group: 'batch.volcano.sh', version: 'v1alpha1', namespace: 'default', plural: 'jobs' }),
    ).rejects.toMatchObject({ code: 404 });

    server!.installCrd({ group: 'batch.volcano.sh', version: 'v1alpha1', plural: 'jobs', kind: 'Job' });
    const list = (await custom.listNamespacedCustomObject({ group: 'batch.volcano.sh', version: 'v1alpha1', namespace: 'default', plural: 'jobs' })) as {
      items: unknown[];
    };
    expect(list.items).toEqual([]);
    expect((await raw('GET', '/apis/batch.volcano.sh/v1alpha1')).json.resources.map((r: { name: string }) => r.name)).toContain('jobs');
    // Another version of an installed CRD group is still not served.
    expect((await raw('GET', '/apis/batch.volcano.sh/v1beta1/namespaces/default/jobs')).text).toBe('404 page not found\n');
    expect((await raw('GET', '/apis/batch.volcano.sh/v1beta1')).text).toBe('404 page not found\n');
    // An unknown version of a built-in group is answered by the group's own handler, as a JSON Status.
    expect((await raw('GET', '/apis/batch/v2')).json).toMatchObject({ kind: 'Status', code: 404 });
    expect(() => server!.installCrd({ group: 'x.io', version: '', plural: 'things', kind: 'Thing' })).toThrow(/version must be a non-empty string/);
  });
});

describe('kube test server: deletion with dependents and finalizers', () => {
  it('foreground delete of a Job with a running pod: 200 with the marked Job, MODIFIED, pods deleted, then DELETED', async () => {
    const { batch, kc } = await setup();
    server!.kubelet.script({ label: { app: 'fg' } }, [{ running: true }]);
    const manifest = jobManifest('fg');
    manifest.metadata.labels = { app: 'fg' };
    manifest.spec.template.metadata.labels = { app: 'fg' };
    await batch.createNamespacedJob({ namespace: 'default', body: manifest as V1Job });
    await eventually(() => (server!.listObjects('/api/v1/namespaces/default/pods') as Obj[]).some((p) => p.status?.phase === 'Running'));
    const watch = await watchEvents(kc, jobs);
    try {
      const res = await raw('DELETE', `${jobs}/fg`, { propagationPolicy: 'Foreground' });
      expect(res.status).toBe(200);
      expect(res.json.kind).toBe('Job');
      expect(res.json.metadata.deletionTimestamp).toMatch(/Z$/);
      expect(res.json.metadata.finalizers).toEqual(['foregroundDeletion']);
      await eventually(() => watch.events.some((e) => e.type === 'DELETED'));
      // The mark arrives as a modification before the deletion (status writes may come in between).
      const marked = watch.events.findIndex((e) => e.type === 'MODIFIED' && e.object.metadata.deletionTimestamp);
      const deleted = watch.events.findIndex((e) => e.type === 'DELETED');
      expect(marked).toBeGreaterThan(-1);
      expect(deleted).toBe(watch.events.length - 1);
      expect(marked).toBeLessThan(deleted);
      expect(server!.listObjects('/api/v1/namespaces/default/pods')).toEqual([]);
    } finally {
      watch.stop();
    }
  });

  it('answers 202 only when the body says orphanDependents: false and the object outlives the call', async () => {
    const { batch } = await setup();
    const held = jobManifest('od') as Obj;
    held.metadata.finalizers = ['example.com/hold'];
    await batch.createNamespacedJob({ namespace: 'default', body: held as V1Job });
    const res = await raw('DELETE', `${jobs}/od`, { orphanDependents: false });
    expect(res.status).toBe(202);
    expect(res.json.metadata.deletionTimestamp).toBeDefined();
    const both = await raw('DELETE', `${jobs}/od`, { orphanDependents: false, propagationPolicy: 'Foreground' });
    expect(both.status).toBe(422);
    expect(both.json.message).toBe(
      'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Invalid value: "Foreground": orphanDependents and deletionPropagation cannot be both set',
    );
    // Background with nothing holding the Job: gone at once, 200 with a Success Status.
    await batch.createNamespacedJob({ namespace: 'default', body: jobManifest('bg') as V1Job });
    const bg = await raw('DELETE', `${jobs}/bg`, { propagationPolicy: 'Background' });
    expect(bg.status).toBe(200);
    expect(bg.json).toMatchObject({ kind: 'Status', status: 'Success', details: { name: 'bg', group: 'batch', kind: 'jobs' } });
  });

  it('keeps an object with finalizers (deletionTimestamp, MODIFIED) until a patch empties them (DELETED)', async () => {
    const { core, kc } = await setup();
    await core.createNamespacedConfigMap({
      namespace: 'default',
      body: { metadata: { name: 'held', finalizers: ['example.com/hold'] }, data: { k: 'v' } },
    });
    const watch = await watchEvents(kc, configmaps);
    try {
      const res = await raw('DELETE', `${configmaps}/held`);
      expect(res.status).toBe(200);
      expect(res.json.metadata).toMatchObject({
        deletionTimestamp: expect.stringMatching(/Z$/),
        deletionGracePeriodSeconds: 0,
        finalizers: ['example.com/hold'],
      });
      expect(server!.getObject(`${configmaps}/held`)).toBeDefined();
      // No new finalizer may be added to an object being deleted.
      const added = await raw(
        'PATCH',
        `${configmaps}/held`,
        { metadata: { finalizers: ['example.com/hold', 'example.com/more'] } },
        { 'Content-Type': 'application/merge-patch+json' },
      );
      expect(added.status).toBe(422);
      expect(added.json.message).toBe(
        'ConfigMap "held" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{"example.com/more"}',
      );
      await core.patchNamespacedConfigMap({ name: 'held', namespace: 'default', body: [{ op: 'remove', path: '/metadata/finalizers' }] });
      await eventually(() => watch.events.some((e) => e.type === 'DELETED'));
      expect(watch.events.map((e) => e.type)).toEqual(['ADDED', 'MODIFIED', 'MODIFIED', 'DELETED']);
      expect(server!.getObject(`${configmaps}/held`)).toBeUndefined();
    } finally {
      watch.stop();
    }
  });

  it('TTL-after-finished marks a Job with a user finalizer, deletes its pods, and keeps it until the finalizer goes', async () => {
    const { batch } = await setup({ timeScale: 0.01 });
    const manifest = jobManifest('kept', ['sh', '-c', 'echo done'], { ttlSecondsAfterFinished: 1 });
    (manifest.metadata as Record<string, unknown>).finalizers = ['launch.dev/outcome'];
    await batch.createNamespacedJob({ namespace: 'default', body: manifest as V1Job });
    const marked = await eventually(() => {
      const job = server!.getObject(`${jobs}/kept`) as Obj | undefined;
      return job?.metadata.deletionTimestamp && !job.metadata.finalizers.includes('foregroundDeletion') ? job : undefined;
    });
    expect(marked.metadata.finalizers).toEqual(['launch.dev/outcome']);
    expect(marked.status?.conditions?.some((c: { type: string }) => c.type === 'Complete')).toBe(true);
    expect(server!.listObjects('/api/v1/namespaces/default/pods')).toEqual([]);
    await batch.patchNamespacedJob({ name: 'kept', namespace: 'default', body: [{ op: 'remove', path: '/metadata/finalizers' }] });
    await eventually(() => server!.getObject(`${jobs}/kept`) === undefined);
  });
});

describe('kube test server: Job labels', () => {
  it("leaves a labelled Job's own labels alone and adds the job-name/controller-uid labels to the template only", async () => {
    const { batch } = await setup();
    const job = await batch.createNamespacedJob({ namespace: 'default', body: jobManifest('own') as V1Job });
    const uid = job.metadata!.uid!;
    expect(job.metadata!.labels).toEqual({ app: 'launch' });
    expect(job.spec!.template.metadata!.labels).toEqual({
      app: 'launch',
      'batch.kubernetes.io/controller-uid': uid,
      'batch.kubernetes.io/job-name': 'own',
      'controller-uid': uid,
      'job-name': 'own',
    });
  });

  it('gives a Job without labels its template labels, generated ones included', async () => {
    const { batch } = await setup();
    const manifest = jobManifest('bare') as Obj;
    delete manifest.metadata.labels;
    const job = await batch.createNamespacedJob({ namespace: 'default', body: manifest as V1Job });
    expect(job.metadata!.labels).toEqual(job.spec!.template.metadata!.labels);
    expect(job.metadata!.labels).toMatchObject({ app: 'launch', 'job-name': 'bare' });
  });
});

describe('kube test server: Secret types and the annotation size limit', () => {
  const secret = (name: string, type: string, data: Record<string, string>, stringData?: Record<string, string>) => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name },
    type,
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    ...(stringData ? { stringData } : {}),
  });

  it('refuses a basic-auth secret with neither username nor password, naming both fields', async () => {
    await setup();
    const res = await raw('POST', secrets, secret('ba', 'kubernetes.io/basic-auth', { other: 'x' }));
    expect(res.status).toBe(422);
    expect(res.json).toMatchObject({
      reason: 'Invalid',
      message: 'Secret "ba" is invalid: [data[username]: Required value, data[password]: Required value]',
      details: {
        kind: 'Secret',
        causes: [
          { reason: 'FieldValueRequired', message: 'Required value', field: 'data[username]' },
          { reason: 'FieldValueRequired', message: 'Required value', field: 'data[password]' },
        ],
      },
    });
    // One of the two is enough, also through stringData.
    expect((await raw('POST', secrets, secret('ba', 'kubernetes.io/basic-auth', {}, { password: 'p' }))).status).toBe(201);
  });

  it('requires .dockerconfigjson holding a JSON object, without echoing the contents', async () => {
    await setup();
    const missing = await raw('POST', secrets, secret('d1', 'kubernetes.io/dockerconfigjson', {}));
    expect(missing.status).toBe(422);
    expect(missing.json.message).toBe('Secret "d1" is invalid: data[.dockerconfigjson]: Required value');
    const bad = await raw('POST', secrets, secret('d2', 'kubernetes.io/dockerconfigjson', { '.dockerconfigjson': 'hunter2-token' }));
    expect(bad.status).toBe(422);
    expect(bad.json.details.causes).toEqual([
      {
        reason: 'FieldValueInvalid',
        message: `Invalid value: "<secret contents redacted>": invalid character 'h' looking for beginning of value`,
        field: 'data[.dockerconfigjson]',
      },
    ]);
    expect(bad.text).not.toContain('hunter2');
    const list = await raw('POST', secrets, secret('d3', 'kubernetes.io/dockerconfigjson', { '.dockerconfigjson': '[]' }));
    expect(list.json.details.causes[0].message).toContain('json: cannot unmarshal array into Go value of type map[string]interface {}');
    const ok = await raw('POST', secrets, secret('d4', 'kubernetes.io/dockerconfigjson', { '.dockerconfigjson': '{"auths":{}}' }));
    expect(ok.status).toBe(201);
  });

  it("requires tls.crt and tls.key for a TLS secret, and keeps a secret's type immutable", async () => {
    await setup();
    const res = await raw('POST', secrets, secret('t', 'kubernetes.io/tls', { 'tls.crt': 'c' }));
    expect(res.status).toBe(422);
    expect(res.json.message).toBe('Secret "t" is invalid: data[tls.key]: Required value');
    expect((await raw('POST', secrets, secret('o', 'Opaque', { a: 'b' }))).status).toBe(201);
    const changed = await raw('PATCH', `${secrets}/o`, { type: 'kubernetes.io/tls' }, { 'Content-Type': 'application/merge-patch+json' });
    expect(changed.status).toBe(422);
    // The update rules come first, then the new object is validated as on create.
    expect(changed.json.message).toBe(
      'Secret "o" is invalid: [type: Invalid value: "kubernetes.io/tls": field is immutable, data[tls.crt]: Required value, data[tls.key]: Required value]',
    );
  });

  it('refuses annotations over 256 KiB in total with 422 naming metadata.annotations', async () => {
    await setup();
    const limit = 256 * 1024;
    const at = (name: string, size: number) => ({ metadata: { name, annotations: { big: 'x'.repeat(size - 3) } } });
    expect((await raw('POST', configmaps, at('fits', limit))).status).toBe(201);
    const res = await raw('POST', configmaps, at('over', limit + 1));
    expect(res.status).toBe(422);
    expect(res.json.message).toBe('ConfigMap "over" is invalid: metadata.annotations: Too long: must have at most 262144 bytes');
    expect(res.json.details.causes).toEqual([
      { reason: 'FieldValueTooLong', message: 'Too long: must have at most 262144 bytes', field: 'metadata.annotations' },
    ]);
  });
});

describe('kube test server: managedFields', () => {
  it('records the fieldManager (or the User-Agent product) with an Update entry the client parses', async () => {
    const { core } = await setup();
    const created = await core.createNamespacedConfigMap({
      namespace: 'default',
      fieldManager: 'launch-agent',
      body: { metadata: { name: 'mf', labels: { team: 'a' } }, data: { k: 'v' } },
    });
    const entries = created.metadata!.managedFields as V1ManagedFieldsEntry[];
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ manager: 'launch-agent', operation: 'Update', apiVersion: 'v1', fieldsType: 'FieldsV1' });
    expect(entries[0]!.time).toBeInstanceOf(Date);
    expect(entries[0]!.fieldsV1).toEqual({ 'f:data': { '.': {}, 'f:k': {} }, 'f:metadata': { 'f:labels': { '.': {}, 'f:team': {} } } });

    // A second manager changing a field takes it over; fields it did not touch stay with the first.
    const res = await raw(
      'PATCH',
      `${configmaps}/mf`,
      { data: { k: 'w', extra: 'x' } },
      { 'Content-Type': 'application/merge-patch+json', 'User-Agent': 'kubectl/v1.31.0 (linux/amd64)' },
    );
    const byManager = Object.fromEntries(
      (res.json.metadata.managedFields as Array<{ manager: string; fieldsV1: unknown }>).map((e) => [e.manager, e.fieldsV1]),
    );
    expect(byManager).toEqual({
      // data itself stays with the manager that created it; its keys moved to the one that changed them.
      'launch-agent': { 'f:data': {}, 'f:metadata': { 'f:labels': { '.': {}, 'f:team': {} } } },
      kubectl: { 'f:data': { 'f:extra': {}, 'f:k': {} } },
    });
  });

  it('tracks containers by name and records controller and kubelet status writes as status-subresource entries', async () => {
    const { batch } = await setup();
    await batch.createNamespacedJob({ namespace: 'default', body: jobManifest('tracked') as V1Job, fieldManager: 'launch' });
    const done = await eventually(() => {
      const j = server!.getObject(`${jobs}/tracked`) as Obj;
      return j.status?.conditions?.some((c: { type: string }) => c.type === 'Complete') ? j : undefined;
    });
    const entries = done.metadata.managedFields as Array<Record<string, any>>;
    expect(entries).toHaveLength(2);
    const mine = entries.find((e) => e.manager === 'launch')!;
    const controller = entries.find((e) => e.manager === 'kube-controller-manager')!;
    expect(mine).toMatchObject({ manager: 'launch', operation: 'Update', apiVersion: 'batch/v1' });
    expect(mine.subresource).toBeUndefined();
    expect(mine.fieldsV1['f:spec']['f:template']['f:spec']['f:containers']['k:{"name":"main"}']).toMatchObject({ '.': {}, 'f:image': {}, 'f:name': {} });
    expect(mine.fieldsV1['f:status']).toBeUndefined();
    expect(controller).toMatchObject({ manager: 'kube-controller-manager', operation: 'Update', subresource: 'status' });
    expect(Object.keys(controller.fieldsV1['f:status'])).toEqual(expect.arrayContaining(['f:conditions', 'f:succeeded', 'f:startTime']));
    const pod = (server!.listObjects('/api/v1/namespaces/default/pods') as Obj[])[0]!;
    const kubelet = pod.metadata.managedFields.find((e: { manager: string }) => e.manager === 'kubelet');
    expect(kubelet).toMatchObject({ subresource: 'status', apiVersion: 'v1' });
    expect(kubelet.fieldsV1['f:status']['f:conditions']).toHaveProperty('k:{"type":"Ready"}');
  });
});

describe('kube test server: server-side field validation', () => {
  const withUnknown = (name: string) => {
    const m = jobManifest(name) as Obj;
    // Unknown fields are reported in document order.
    m.spec = { foo: 1, ...m.spec };
    m.spec.template.spec.containers[0].bar = 'x';
    return m;
  };

  it('Strict refuses unknown fields with 400 naming them', async () => {
    await setup();
    const res = await raw('POST', `${jobs}?fieldValidation=Strict`, withUnknown('strict'));
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({
      reason: 'BadRequest',
      message:
        'Job in version "v1" cannot be handled as a Job: strict decoding error: unknown field "spec.foo", unknown field "spec.template.spec.containers[0].bar"',
    });
    expect(server!.getObject(`${jobs}/strict`)).toBeUndefined();
    await raw('POST', jobs, jobManifest('p'));
    const patch = await raw('PATCH', `${jobs}/p?fieldValidation=Strict`, { spec: { foo: 1 } }, { 'Content-Type': 'application/merge-patch+json' });
    expect(patch.status).toBe(422);
    expect(patch.json.details.causes[0]).toMatchObject({ field: 'patch', reason: 'FieldValueInvalid' });
    expect(patch.json.details.causes[0].message).toMatch(/strict decoding error: unknown field "spec.foo"$/);
  });

  it('Warn (also the default) stores the object without the unknown fields and says so in Warning headers', async () => {
    await setup();
    for (const [name, query] of [
      ['warn', '?fieldValidation=Warn'],
      ['default', ''],
    ] as const) {
      const res = await raw('POST', `${jobs}${query}`, withUnknown(name));
      expect(res.status).toBe(201);
      expect(res.headers.get('warning')).toBe('299 - "unknown field \\"spec.foo\\"", 299 - "unknown field \\"spec.template.spec.containers[0].bar\\""');
      const stored = server!.getObject(`${jobs}/${name}`) as Obj;
      expect(stored.spec).not.toHaveProperty('foo');
      expect(stored.spec!.template.spec.containers[0]).not.toHaveProperty('bar');
    }
  });

  it('Ignore drops unknown fields silently, and a bad fieldValidation value is a 422', async () => {
    await setup();
    const res = await raw('POST', `${jobs}?fieldValidation=Ignore`, withUnknown('ignore'));
    expect(res.status).toBe(201);
    expect(res.headers.get('warning')).toBeNull();
    expect((server!.getObject(`${jobs}/ignore`) as Obj).spec).not.toHaveProperty('foo');
    const bad = await raw('POST', `${jobs}?fieldValidation=Loose`, jobManifest('x'));
    expect(bad.status).toBe(422);
    expect(bad.json.message).toBe(
      'CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Loose": supported values: "", "Ignore", "Strict", "Warn"',
    );
  });
});
