import { startKubeTestServer, type KubeTestServer } from '@launch/testkit';
import { afterEach, expect, it } from 'vitest';
import { loadCluster } from './cluster.js';
import { createInformer, type Informer } from './informer.js';

type Obj = Record<string, any>;

const logger = { debug() {}, info() {}, warn() {}, error() {} };
let server: KubeTestServer | undefined;
let informer: Informer | undefined;

afterEach(async () => {
  informer?.stop();
  informer = undefined;
  await server?.close();
  server = undefined;
});

const job = (name: string) => ({
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: { name, labels: { 'bench.test/watched': 'yes' } },
  spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox:1.36', command: ['true'] }] } } },
});

it('caches Jobs without metadata.managedFields, from the list and from the watch', async () => {
  server = await startKubeTestServer({ timeScale: 0.01 });
  const cluster = loadCluster(server.kubeconfigPath, undefined);
  const create = (name: string) =>
    cluster.custom.createNamespacedCustomObject({ group: 'batch', version: 'v1', namespace: 'default', plural: 'jobs', body: job(name) });
  await create('listed');
  // The server keeps them: what the informer drops is there to drop.
  expect((server.getObject('/apis/batch/v1/namespaces/default/jobs/listed') as Obj).metadata.managedFields).toEqual(expect.any(Array));
  informer = createInformer({
    cluster,
    namespace: 'default',
    resource: { group: 'batch', version: 'v1', plural: 'jobs' },
    labelSelector: 'bench.test/watched=yes',
    backoff: { initial: 10, max: 100 },
    timeoutSeconds: 60,
    logger,
  });
  const added = new Promise<Obj>((resolve) => informer!.on((type, obj) => type === 'ADDED' && obj.metadata?.name === 'watched' && resolve(obj)));
  await informer.synced;
  await create('watched');
  const event = await added;
  expect(event.metadata.managedFields).toBeUndefined();
  const cached = [...informer.objects()];
  expect(cached.map((o) => o.metadata.name).sort()).toEqual(['listed', 'watched']);
  for (const o of cached) {
    expect(o.metadata.managedFields).toBeUndefined();
    expect(o.metadata.labels).toEqual({ 'bench.test/watched': 'yes' });
  }
});
