import { AppsV1Api, KubernetesObjectApi, Watch } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { KubeTestServer, KubeTestServerOptions } from './server.js';
import { eventually, useKubeServer } from './test-helpers.js';

let server: KubeTestServer | undefined;
const fixture = useKubeServer();
async function setup(options: KubeTestServerOptions = {}) {
  const made = await fixture.setup(options);
  server = made.server;
  return made;
}

const podTemplate = (command = ['sh', '-c', 'echo hi']) => ({
  metadata: { labels: { 'wandb.ai/run-id': 'abc' } },
  spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'trainer:1', command }] },
});

type Obj = { metadata: Record<string, any>; status?: Record<string, any> };

describe('kube test server: custom objects', () => {
  it('drives a Volcano job Pending → Running → Completed, with pods per task replica', async () => {
    const { custom, kc } = await setup();
    server!.kubelet.script({ label: { 'volcano.sh/task-spec': 'worker' } }, [{ running: true }, { wait: 30 }, { succeed: true }]);
    const phases: string[] = [];
    const controller = await new Watch(kc).watch(
      '/apis/batch.volcano.sh/v1alpha1/namespaces/default/jobs',
      {},
      (_t, o: Obj) => {
        const p = o.status?.state?.phase;
        if (p && phases.at(-1) !== p) phases.push(p);
      },
      () => undefined,
    );
    const created = (await custom.createNamespacedCustomObject({
      group: 'batch.volcano.sh',
      version: 'v1alpha1',
      namespace: 'default',
      plural: 'jobs',
      body: {
        apiVersion: 'batch.volcano.sh/v1alpha1',
        kind: 'Job',
        metadata: { generateName: 'launch-vc-' },
        spec: { minAvailable: 2, schedulerName: 'volcano', tasks: [{ name: 'worker', replicas: 2, template: podTemplate() }] },
      },
    })) as Obj;
    const name = created.metadata.name as string;
    expect(name).toMatch(/^launch-vc-[a-z0-9]{5}$/);
    await eventually(() => phases.includes('Completed'));
    controller.abort();
    expect(phases).toEqual(['Pending', 'Running', 'Completed']);
    const pods = server!.listObjects('/api/v1/namespaces/default/pods') as Obj[];
    expect(pods.map((p) => p.metadata.name).sort()).toEqual([`${name}-worker-0`, `${name}-worker-1`]);
    expect(pods[0]!.metadata.labels).toMatchObject({ 'volcano.sh/job-name': name, 'wandb.ai/run-id': 'abc' });
    const got = (await custom.getNamespacedCustomObject({ group: 'batch.volcano.sh', version: 'v1alpha1', namespace: 'default', plural: 'jobs', name })) as Obj;
    expect(got.status).toMatchObject({ state: { phase: 'Completed' }, succeeded: 2 });
    // Deleting the custom object collects its pods.
    await custom.deleteNamespacedCustomObject({ group: 'batch.volcano.sh', version: 'v1alpha1', namespace: 'default', plural: 'jobs', name });
    await eventually(() => server!.listObjects('/api/v1/namespaces/default/pods').length === 0);
  });

  it('fails a Volcano job when a pod fails', async () => {
    const { custom } = await setup();
    await custom.createNamespacedCustomObject({
      group: 'batch.volcano.sh',
      version: 'v1alpha1',
      namespace: 'default',
      plural: 'jobs',
      body: {
        apiVersion: 'batch.volcano.sh/v1alpha1',
        kind: 'Job',
        metadata: { name: 'vc' },
        spec: { tasks: [{ name: 't', replicas: 1, template: podTemplate(['sh', '-c', 'exit 2']) }] },
      },
    });
    await eventually(() => (server!.getObject('/apis/batch.volcano.sh/v1alpha1/namespaces/default/jobs/vc') as Obj).status?.state?.phase === 'Failed');
  });

  it('reports PyTorchJob conditions Created → Running → Succeeded from the master pod', async () => {
    const { custom } = await setup();
    server!.kubelet.setDefault([{ running: true }, { wait: 300 }, { succeed: true }]);
    await custom.createNamespacedCustomObject({
      group: 'kubeflow.org',
      version: 'v1',
      namespace: 'default',
      plural: 'pytorchjobs',
      body: {
        apiVersion: 'kubeflow.org/v1',
        kind: 'PyTorchJob',
        metadata: { name: 'pt' },
        spec: { pytorchReplicaSpecs: { Master: { replicas: 1, template: podTemplate() }, Worker: { replicas: 2, template: podTemplate() } } },
      },
    });
    const path = '/apis/kubeflow.org/v1/namespaces/default/pytorchjobs/pt';
    await eventually(() => ((server!.getObject(path) as Obj).status?.conditions ?? []).some((c: any) => c.type === 'Running' && c.status === 'True'));
    const done = await eventually(() => {
      const o = server!.getObject(path) as Obj;
      // The master's success decides; under load the workers may finish a moment later, so wait for their count too.
      const succeeded = (o.status?.conditions ?? []).some((c: any) => c.type === 'Succeeded' && c.status === 'True');
      return succeeded && o.status?.replicaStatuses?.Worker?.succeeded === 2 ? o : undefined;
    });
    expect(done.status!.conditions.map((c: any) => [c.type, c.status])).toEqual([
      ['Created', 'True'],
      ['Running', 'False'],
      ['Succeeded', 'True'],
    ]);
    expect(done.status!.replicaStatuses).toMatchObject({ Master: { succeeded: 1 }, Worker: { succeeded: 2 } });
    const names = (server!.listObjects('/api/v1/namespaces/default/pods') as Obj[]).map((p) => p.metadata.name).sort();
    expect(names).toEqual(['pt-master-0', 'pt-worker-0', 'pt-worker-1']);
  });

  it('runs a JobSet through child batch/v1 Jobs and reports replicatedJobsStatus', async () => {
    const { custom } = await setup();
    server!.kubelet.setDefault([{ running: true }, { wait: 300 }, { succeed: true }]);
    await custom.createNamespacedCustomObject({
      group: 'jobset.x-k8s.io',
      version: 'v1alpha2',
      namespace: 'default',
      plural: 'jobsets',
      body: {
        apiVersion: 'jobset.x-k8s.io/v1alpha2',
        kind: 'JobSet',
        metadata: { name: 'js' },
        spec: { replicatedJobs: [{ name: 'workers', replicas: 2, template: { spec: { backoffLimit: 0, template: podTemplate() } } }] },
      },
    });
    const path = '/apis/jobset.x-k8s.io/v1alpha2/namespaces/default/jobsets/js';
    await eventually(() => (server!.getObject(path) as Obj).status?.replicatedJobsStatus?.[0]?.ready >= 1);
    const done = await eventually(() => {
      const o = server!.getObject(path) as Obj;
      return o.status?.terminalState ? o : undefined;
    });
    expect(done.status).toMatchObject({
      terminalState: 'Completed',
      replicatedJobsStatus: [{ name: 'workers', succeeded: 2, failed: 0, ready: 0, active: 0 }],
      conditions: [{ type: 'Completed', status: 'True', reason: 'AllJobsCompleted' }],
    });
    const jobs = (server!.listObjects('/apis/batch/v1/namespaces/default/jobs') as Obj[]).map((j) => j.metadata.name).sort();
    expect(jobs).toEqual(['js-workers-0', 'js-workers-1']);
  });

  it('stores any other declared custom kind; tests drive its status with patchStatus', async () => {
    const { custom } = await setup({ customResources: [{ group: 'example.com', version: 'v1', plural: 'widgets', kind: 'Widget' }] });
    await custom.createNamespacedCustomObject({
      group: 'example.com',
      version: 'v1',
      namespace: 'default',
      plural: 'widgets',
      body: { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' }, spec: { size: 1 } },
    });
    const patched = server!.patchStatus('/apis/example.com/v1/namespaces/default/widgets/w', { phase: 'Ready' }) as Obj;
    expect(patched.status).toEqual({ phase: 'Ready' });
    const list = (await custom.listNamespacedCustomObject({ group: 'example.com', version: 'v1', namespace: 'default', plural: 'widgets' })) as {
      items: Obj[];
    };
    // Custom resource lists keep apiVersion/kind on items (unstructured), unlike built-in lists.
    expect(list.items[0]).toMatchObject({ apiVersion: 'example.com/v1', kind: 'Widget', status: { phase: 'Ready' } });
  });

  it('answers a plain-text 404 for an undeclared CRD, as a cluster without it does', async () => {
    const { custom } = await setup();
    await expect(custom.listNamespacedCustomObject({ group: 'example.com', version: 'v1', namespace: 'default', plural: 'widgets' })).rejects.toMatchObject({
      code: 404,
      body: '404 page not found\n',
    });
  });

  it('serves any custom group made up from the path with allowUnknownCustomResources', async () => {
    const { custom } = await setup({ allowUnknownCustomResources: true });
    await custom.createNamespacedCustomObject({
      group: 'example.com',
      version: 'v1',
      namespace: 'default',
      plural: 'gadgets',
      body: { apiVersion: 'example.com/v1', kind: 'Gadget', metadata: { name: 'g' } },
    });
    expect(server!.getObject('/apis/example.com/v1/namespaces/default/gadgets/g')).toMatchObject({ kind: 'Gadget' });
  });

  it('supports KubernetesObjectApi (discovery + create) and reports Deployments ready', async () => {
    const { kc } = await setup();
    const objects = KubernetesObjectApi.makeApiClient(kc);
    await objects.create({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'aux', namespace: 'default' },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'aux' } },
        template: { metadata: { labels: { app: 'aux' } }, spec: { containers: [{ name: 'c', image: 'redis:7' }] } },
      },
    } as any);
    const apps = kc.makeApiClient(AppsV1Api);
    await eventually(async () => (await apps.readNamespacedDeployment({ name: 'aux', namespace: 'default' })).status?.readyReplicas === 2);
    expect(server!.requests.some((r) => r.path === '/apis/apps/v1')).toBe(true);
  });
});
