import { LaunchError } from '@launch/core';
import { startKubeTestServer, type KubeletStep, type KubeTestServer } from '@launch/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { LABEL } from './labels.js';
import { FINALIZER, objectName } from './manifest.js';
import { createKubernetesRunner, type KubernetesRunner } from './runner.js';
import { kubeRequest, until } from './test-fixtures.js';

type Obj = Record<string, any>;

const ctx = { logger: { debug() {}, info() {}, warn() {}, error() {} } };
let server: KubeTestServer | undefined;
const runners: KubernetesRunner[] = [];

afterEach(async () => {
  for (const r of runners.splice(0)) await r.close();
  await server?.close();
  server = undefined;
});

async function setup(options: Parameters<typeof createKubernetesRunner>[0] = {}, serverOptions: Parameters<typeof startKubeTestServer>[0] = {}) {
  server = await startKubeTestServer({ kubelet: { stepDelayMs: 5 }, timeScale: 0.01, namespaces: ['default', 'ml'], ...serverOptions });
  const runner = createKubernetesRunner({ kubeconfigPath: server.kubeconfigPath, watchBackoffMs: { initial: 10, max: 100 }, ...options });
  runners.push(runner);
  return { server, runner };
}

let n = 0;
const ids = () => {
  n++;
  return { runId: `run${n}x${Date.now().toString(36)}`, itemId: `item-${n}-${Math.random().toString(36).slice(2)}=` };
};

async function eventually<T>(fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const jobs = (ns = 'default') => server!.listObjects(`/apis/batch/v1/namespaces/${ns}/jobs`) as Obj[];
const secrets = (ns = 'default') => server!.listObjects(`/api/v1/namespaces/${ns}/secrets`) as Obj[];

describe('kubernetes runner on the test server', () => {
  it('creates a valid Job with a per-run API key secret that is deleted when the run ends', async () => {
    const { runner } = await setup();
    const req = kubeRequest({ ...ids(), entryPoint: ['sh', '-c'], args: ['sleep 1; echo done'] });
    const run = await runner.run(req, ctx);
    const job = jobs().find((j) => j.metadata.name === run.id)!;
    // W&B's name prefix; the suffix is derived from the item id, so the API server refuses a second Job for it.
    expect(job.metadata.name).toBe(objectName(req));
    expect(job.metadata.name).toMatch(/^launch-my-team-fine-tune-[0-9a-f]{10}$/);
    expect(job.metadata.finalizers).toContain(FINALIZER);
    const secret = secrets().find((s) => s.metadata.name === `wandb-api-key-${req.runId}`);
    expect(secret?.type).toBe('kubernetes.io/basic-auth');
    const status = await run.wait();
    expect(status.state).toBe('finished');
    expect(secrets().some((s) => s.metadata.name === `wandb-api-key-${req.runId}`)).toBe(false);
  });

  it('uses the per-release secret and never deletes it', async () => {
    const { runner } = await setup({ releaseName: 'launch' });
    const req = kubeRequest({ ...ids(), entryPoint: ['sh', '-c'], args: ['exit 0'] });
    const run = await runner.run(req, ctx);
    const job = jobs().find((j) => j.metadata.name === run.id)!;
    const env = job.spec.template.spec.containers[0].env as Obj[];
    expect(env.find((e) => e.name === 'WANDB_API_KEY')?.valueFrom.secretKeyRef.name).toBe('wandb-api-key-launch');
    expect(secrets().some((s) => s.metadata.name === `wandb-api-key-${req.runId}`)).toBe(false);
    expect((await run.wait()).state).toBe('finished');
  });

  it('creates an image-pull secret when the registry needs one', async () => {
    const registry = {
      specificationVersion: 'v1' as const,
      name: 'oci',
      uri: 'registry.example.com:5000/launch',
      needsPullSecret: true,
      credentials: async () => ({ username: 'u', password: 'registry-password-1' }),
      imageExists: async () => true,
    };
    const { runner } = await setup({ registry });
    const req = kubeRequest({ ...ids(), entryPoint: ['sh', '-c'], args: ['sleep 2'] });
    const run = await runner.run(req, ctx);
    const job = jobs().find((j) => j.metadata.name === run.id)!;
    expect(job.spec.template.spec.imagePullSecrets).toEqual([{ name: `regcred-${req.runId}` }]);
    const pull = secrets().find((s) => s.metadata.name === `regcred-${req.runId}`)!;
    expect(pull.type).toBe('kubernetes.io/dockerconfigjson');
    const config = JSON.parse(Buffer.from(pull.data['.dockerconfigjson'], 'base64').toString());
    expect(Object.keys(config.auths)).toEqual(['registry.example.com:5000']);
    await run.wait();
    expect(secrets().some((s) => s.metadata.name === `regcred-${req.runId}`)).toBe(false);
  });

  it("reports starting (not unknown) until the pod runs, so the agent's start timeout applies to plain Jobs; a cancel never goes back to starting", async () => {
    const { runner, server } = await setup();
    server.kubelet.script({ label: { [LABEL.monitor]: 'true' } }, [{ pending: 'ContainerCreating' }, { wait: 60_000 }]);
    const run = await runner.run(kubeRequest(ids()), ctx);
    const states: string[] = [];
    run.onStatus((s) => states.push(s.state));
    expect((await run.status()).state).toBe('starting');
    await run.cancel();
    const status = await run.wait();
    expect(status.state).toBe('stopped');
    expect(states.indexOf('starting', states.indexOf('stopping'))).toBe(-1);
    // The finalizer holds the Job until the agent says the end is recorded.
    expect(jobs().some((j) => j.metadata.name === run.id)).toBe(true);
    await run.reported!();
    await eventually(() => !jobs().some((j) => j.metadata.name === run.id));
  });

  const scenarios: { name: string; steps: KubeletStep[]; category: string; state: string; text: RegExp }[] = [
    {
      name: 'ErrImagePull',
      steps: [{ imagePull: 'ErrImagePull' }, { wait: 60_000 }],
      category: 'ImagePullError',
      state: 'starting',
      text: /ghcr\.io\/acme\/train:1/,
    },
    {
      name: 'ImagePullBackOff',
      steps: [{ imagePull: 'ImagePullBackOff' }, { wait: 60_000 }],
      category: 'ImagePullError',
      state: 'starting',
      text: /ImagePullBackOff/,
    },
    {
      name: 'CrashLoopBackOff',
      steps: [{ running: true }, { crashLoop: { restartCount: 3, exitCode: 2 } }, { wait: 60_000 }],
      category: 'CrashLoopBackOff',
      state: 'running',
      text: /restarted 3 times/,
    },
    {
      name: 'Unschedulable',
      steps: [{ unschedulable: '0/3 nodes are available: 3 Insufficient nvidia.com/gpu.' }, { wait: 60_000 }],
      category: 'Unschedulable',
      state: 'starting',
      text: /InsufficientResources.*nvidia\.com\/gpu/,
    },
  ];
  for (const s of scenarios) {
    it(`diagnoses ${s.name} while the run is live`, async () => {
      const { runner, server } = await setup();
      server.kubelet.script({ label: { [LABEL.monitor]: 'true' } }, s.steps);
      const run = await runner.run(kubeRequest(ids()), ctx);
      const status = await until(run, (x) => x.diagnosis?.category === s.category);
      expect(status.state).toBe(s.state);
      expect(status.diagnosis!.message).toMatch(s.text);
      expect(status.diagnosis!.hint.length).toBeGreaterThan(20);
      await run.cancel();
      expect((await run.wait()).state).toBe('stopped');
    });
  }

  it('OOMKilled: fails with the diagnosis, exit code 137 and the log tail, even though the pod is garbage-collected', async () => {
    const { runner, server } = await setup({ logTailLines: 2 });
    server.kubelet.script({ label: { [LABEL.monitor]: 'true' } }, [
      { running: true },
      { log: 'line 1\nline 2\nloading shard 3' },
      { fail: { exitCode: 137, reason: 'OOMKilled' } },
    ]);
    const run = await runner.run(kubeRequest(ids()), ctx);
    const status = await run.wait();
    expect(status.state).toBe('failed');
    expect(status.exitCode).toBe(137);
    expect(status.diagnosis?.category).toBe('OOMKilled');
    expect(status.logTail).toBe('line 2\nloading shard 3\n');
    expect(status.diagnosis?.hint).toMatch(/memory limit/);
    expect(status.messages.join('\n')).toMatch(/BackoffLimitExceeded/);
    // ttlSecondsAfterFinished (60 s scaled to 0.6 s) marks the job for deletion, but the finalizer keeps it (and so
    // the run's outcome) until the agent says it recorded the end; then it goes, and the tail was kept.
    await eventually(() => jobs().find((j) => j.metadata.name === run.id)?.metadata.deletionTimestamp);
    await run.reported!();
    await eventually(() => !jobs().some((j) => j.metadata.name === run.id));
    expect(status.logTail).toContain('loading shard 3');
  });

  it('Evicted and preemption end preempted (the agent requeues) with their diagnosis, and the job is deleted', async () => {
    const { runner, server } = await setup();
    const a = ids();
    const b = ids();
    server.kubelet.script({ label: { [LABEL.runId]: a.runId } }, [{ running: true }, { evict: 'The node was low on resource: memory.' }]);
    server.kubelet.script({ label: { [LABEL.runId]: b.runId } }, [{ running: true }, { preempt: 'PreemptionByScheduler' }]);
    const [ra, rb] = await Promise.all([runner.run(kubeRequest(a), ctx), runner.run(kubeRequest(b), ctx)]);
    const [sa, sb] = await Promise.all([ra.wait(), rb.wait()]);
    expect(sa.state).toBe('preempted');
    expect(sa.diagnosis?.category).toBe('Evicted');
    expect(sa.diagnosis?.message).toMatch(/low on resource/);
    expect(sb.state).toBe('preempted');
    expect(sb.diagnosis?.category).toBe('Preempted');
    await Promise.all([ra.reported!(), rb.reported!()]);
    await eventually(() => !jobs().some((j) => j.metadata.name === ra.id || j.metadata.name === rb.id));
  });

  it('a watch broken mid-run, or answered with 410 Gone, loses no state change', async () => {
    const { runner, server } = await setup();
    server.kubelet.script({ label: { [LABEL.monitor]: 'true' } }, [{ running: true }, { wait: 300 }, { log: 'bye' }, { fail: { exitCode: 4 } }]);
    const run = await runner.run(kubeRequest(ids()), ctx);
    const seen: string[] = [];
    run.onStatus((s) => seen.push(s.state));
    await until(run, (s) => s.state === 'running');
    server.kubelet.pause();
    server.breakWatches();
    server.compact();
    server.kubelet.resume();
    const status = await run.wait();
    expect(status.state).toBe('failed');
    expect(status.exitCode).toBe(4);
    expect(status.logTail).toContain('bye');
    expect(seen.at(-1)).toBe('failed');
    expect(runner.watchStats().relists410 + runner.watchStats().reconnects).toBeGreaterThan(0);
  });

  it('stops the watches of a namespace once no run uses it, keeps those still in use, and watches again on the next run there', async () => {
    const { runner, server } = await setup({ watchIdleMs: 0 });
    const long = ids();
    server.kubelet.script({ label: { [LABEL.runId]: long.runId } }, [{ running: true }, { wait: 600_000 }, { succeed: true }]);
    const inDefault = await runner.run(kubeRequest(long), ctx);
    await until(inDefault, (s) => s.state === 'running');
    const first = await runner.run(kubeRequest({ ...ids(), resourceArgs: { namespace: 'ml' } }), ctx);
    // Job and pod informers in both namespaces.
    expect(runner.watchStats().informers).toBe(4);
    expect((await first.wait()).state).toBe('finished');
    expect(runner.watchStats().informers).toBe(2);
    await eventually(() => server.openWatches() === 2);
    const watchesOf = (ns: string) => server.requests.filter((r) => r.watch && r.path.startsWith(`/api/v1/namespaces/${ns}/`)).length;
    const mlWatches = watchesOf('ml');
    const second = await runner.run(kubeRequest({ ...ids(), resourceArgs: { namespace: 'ml' } }), ctx);
    expect(runner.watchStats().informers).toBe(4);
    expect((await second.wait()).state).toBe('finished');
    expect(watchesOf('ml')).toBeGreaterThan(mlWatches);
    // The run in `default` was followed throughout.
    expect((await inDefault.status()).state).toBe('running');
    await inDefault.cancel();
    expect((await inDefault.wait()).state).toBe('stopped');
    expect(runner.watchStats().informers).toBe(0);
    await eventually(() => server.openWatches() === 0);
  });

  it('keeps the watches of a namespace open for watchIdleMs after its last run, so back-to-back runs share them', async () => {
    const { runner } = await setup({ watchIdleMs: 600_000 });
    expect((await (await runner.run(kubeRequest(ids()), ctx)).wait()).state).toBe('finished');
    const before = runner.watchStats();
    expect(before.informers).toBe(2);
    expect((await (await runner.run(kubeRequest(ids()), ctx)).wait()).state).toBe('finished');
    expect(runner.watchStats().lists).toBe(before.lists);
  });

  it('a 403 names the missing permission', async () => {
    const { runner, server } = await setup();
    server.injectFault({ method: 'POST', path: /\/apis\/batch\/v1\/namespaces\/ml\/jobs$/, status: 403 });
    const error = await runner.run(kubeRequest({ ...ids(), resourceArgs: { namespace: 'ml' } }), ctx).catch((e: unknown) => e);
    expect(LaunchError.isInstance(error)).toBe(true);
    const e = error as LaunchError;
    expect(e.category).toBe('PermissionDenied');
    expect(e.hint).toBe('the agent\'s service account lacks "create" on "batch/jobs" in namespace "ml": grant it with a Role/RoleBinding');
    expect(e.message).toContain('cannot create resource "jobs" in API group "batch" in the namespace "ml"');
    // Nothing is left behind.
    expect(secrets('ml').filter((s) => s.metadata.name.startsWith('wandb-api-key-'))).toEqual([]);
  });

  it('a 403 on the watch fails the run before anything is created', async () => {
    const { runner, server } = await setup();
    server.injectFault({ method: 'GET', path: /\/api\/v1\/namespaces\/ml\/pods$/, status: 403 });
    const error = (await runner.run(kubeRequest({ ...ids(), resourceArgs: { namespace: 'ml' } }), ctx).catch((e: unknown) => e)) as LaunchError;
    expect(error.hint).toMatch(/lacks "list" on .*core\/pods.* in namespace "ml"/);
    expect(jobs('ml')).toEqual([]);
  });

  it('secure mode refuses each dangerous field, naming its path', async () => {
    const { runner } = await setup({ secureMode: true });
    const resourceArgs = {
      spec: {
        template: {
          spec: {
            hostNetwork: false,
            initContainers: [{ name: 'i', image: 'x' }],
            containers: [{ command: ['sh'] }],
            volumes: [{ name: 'v', hostPath: { path: '/' } }],
          },
        },
      },
    };
    const base = kubeRequest();
    const spec = { ...base.spec, overrides: { entry_point: ['python'] } };
    const error = (await runner.run(kubeRequest({ ...ids(), spec, resourceArgs, entryPoint: ['python'] }), ctx).catch((e: unknown) => e)) as LaunchError;
    for (const path of [
      'spec.template.spec.hostNetwork',
      'spec.template.spec.initContainers',
      'spec.template.spec.containers[0].command',
      'spec.template.spec.volumes[0].hostPath',
      'overrides.entry_point',
    ]) {
      expect(error.message).toContain(path);
    }
    expect(jobs()).toEqual([]);
  });

  it("secure mode runs a job's own entry point (not an override of the item), as W&B does", async () => {
    const { runner, server } = await setup({ secureMode: true });
    server.kubelet.script({ label: { [LABEL.monitor]: 'true' } }, [{ succeed: true }]);
    const run = await runner.run(kubeRequest({ ...ids(), entryPoint: ['python', 'train.py'] }), ctx);
    expect((await run.wait()).state).toBe('finished');
    expect(jobs()[0]!.spec.template.spec.containers[0].command).toEqual(['python', 'train.py']);
  });

  it('never creates two Jobs for one queue item, and adopts the jobs of a restarted agent', async () => {
    const { runner, server } = await setup({ agentName: 'stable-agent' });
    server.kubelet.script({ label: { [LABEL.monitor]: 'true' } }, [{ running: true }, { wait: 400 }, { succeed: true }]);
    const req = kubeRequest(ids());
    const first = await runner.run(req, ctx);
    // The item is delivered again to the same process: the same Job is followed.
    expect((await runner.run(req, ctx)).id).toBe(first.id);
    // The agent crashed between create and ack and a new process gets the item: still the same Job.
    const restarted = createKubernetesRunner({ kubeconfigPath: server.kubeconfigPath, agentName: 'stable-agent' });
    runners.push(restarted);
    const second = await restarted.run(req, ctx);
    expect(second.id).toBe(first.id);
    expect(jobs().filter((j) => j.metadata.annotations['launch.dev/item-id'] === req.itemId)).toHaveLength(1);

    // A new runner (a restarted agent) adopts it, with the run id, item id and queue from the labels/annotations.
    const other = createKubernetesRunner({ kubeconfigPath: server.kubeconfigPath, agentName: 'stable-agent' });
    runners.push(other);
    const adopted = await other.adopt('ignored', ctx);
    expect(adopted.map((r) => [r.id, r.runId, r.itemId, r.queue])).toEqual([[first.id, req.runId, req.itemId, 'gpu']]);
    expect(adopted[0]!.spec).toMatchObject({ entity: 'My_Team' });
    expect((await adopted[0]!.wait()).state).toBe('finished');
    await adopted[0]!.reported!();
    // The adopting runner cleaned up the per-run secret.
    expect(secrets().some((s) => s.metadata.name === `wandb-api-key-${req.runId}`)).toBe(false);
    // Finished and reported: a third agent adopts nothing.
    const third = createKubernetesRunner({ kubeconfigPath: server.kubeconfigPath, agentName: 'stable-agent' });
    runners.push(third);
    expect(await third.adopt('x', ctx)).toEqual([]);
  });

  it('runs a Volcano Job as a first-class kind and follows its phase', async () => {
    const { runner } = await setup();
    const resourceArgs = {
      apiVersion: 'batch.volcano.sh/v1alpha1',
      kind: 'Job',
      spec: {
        minAvailable: 1,
        schedulerName: 'volcano',
        tasks: [{ name: 'main', replicas: 1, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'm' }] } } }],
      },
    };
    const run = await runner.run(kubeRequest({ ...ids(), resourceArgs, entryPoint: ['sh', '-c'], args: ['echo volcano; exit 0'] }), ctx);
    const obj = server!.getObject(`/apis/batch.volcano.sh/v1alpha1/namespaces/default/jobs/${run.id}`) as Obj;
    expect(obj.metadata.labels[LABEL.monitor]).toBe('true');
    expect((await run.wait()).state).toBe('finished');
  });

  it('cancel deletes the Job with foreground propagation and cleans its secret; a 404 is not an error', async () => {
    const { runner, server } = await setup();
    const req = kubeRequest({ ...ids(), entryPoint: ['sh', '-c'], args: ['sleep 100'] });
    const run = await runner.run(req, ctx);
    await until(run, (s) => s.state === 'running');
    await run.cancel();
    expect((await run.wait()).state).toBe('stopped');
    const del = server.requests.find((r) => r.method === 'DELETE' && r.path.endsWith(`/jobs/${run.id}`));
    expect(del).toBeDefined();
    await run.reported!();
    await eventually(() => !jobs().some((j) => j.metadata.name === run.id));
    expect(secrets().some((s) => s.metadata.name === `wandb-api-key-${req.runId}`)).toBe(false);
  });

  it('attachOnly follows the Job an earlier claim created, and fails as outcome lost when it is gone; it never creates one', async () => {
    const { runner, server } = await setup({ agentName: 'attach-agent' });
    server.kubelet.script({ label: { [LABEL.monitor]: 'true' } }, [{ running: true }, { wait: 200 }, { succeed: true }]);
    const req = kubeRequest(ids());
    const first = await runner.run(req, ctx);
    expect((await first.wait()).state).toBe('finished');
    // The agent died before recording the end: a new runner instance is asked to follow the run only.
    const restarted = createKubernetesRunner({ kubeconfigPath: server.kubeconfigPath, agentName: 'attach-agent' });
    runners.push(restarted);
    const followed = await restarted.run({ ...req, attachOnly: true }, ctx);
    expect(followed.id).toBe(first.id);
    expect((await followed.wait()).state).toBe('finished');
    await followed.reported!();
    await eventually(() => !jobs().some((j) => j.metadata.name === first.id));

    const posts = () => server.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/jobs')).length;
    const before = posts();
    const lost = await restarted.run({ ...kubeRequest(ids()), attachOnly: true }, ctx).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(LaunchError.isInstance(lost) && (lost as LaunchError).code).toBe('run.outcome_lost');
    expect((lost as LaunchError).message).toContain('is no longer in namespace "default"; not starting it again');
    expect(posts()).toBe(before);
  });

  it('a custom resource whose CRD is not installed fails at once, naming the kind and what to install; the runner still closes', async () => {
    const { runner } = await setup({}, { allowUnknownCustomResources: false });
    const resourceArgs = {
      apiVersion: 'example.com/v1',
      kind: 'TrainJob',
      spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'm' }] } } },
    };
    // Before the fix this hung forever (the informer retried the 404 every 30 s and run() awaited its first list).
    const error = await runner.run(kubeRequest({ ...ids(), resourceArgs }), ctx).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(LaunchError.isInstance(error)).toBe(true);
    const e = error as LaunchError;
    expect(e.code).toBe('run.kind_not_installed');
    expect(e.stage).toBe('run');
    expect(e.message).toContain('the cluster has no example.com/v1 trainjobs');
    expect(e.hint).toContain('install the operator that serves TrainJob');
    // No retry loop behind it: the informer for the missing kind gave up and was dropped (the pods' one remains).
    expect(runner.watchStats().informers).toBe(1);
  });

  it("streams the running pod's log to onLog listeners", async () => {
    const { runner, server } = await setup();
    server.kubelet.script({ label: { [LABEL.monitor]: 'true' } }, [
      { running: true },
      { log: 'epoch 1' },
      { wait: 200 },
      { log: 'epoch 2' },
      { wait: 200 },
      { succeed: true },
    ]);
    const run = await runner.run(kubeRequest(ids()), ctx);
    let text = '';
    run.onLog!((chunk) => {
      text += chunk.text;
    });
    expect((await run.wait()).state).toBe('finished');
    expect(text).toContain('epoch 1');
    expect(text).toContain('epoch 2');
    expect(server.requests.some((r) => r.method === 'GET' && r.path.endsWith('/log') && r.query?.follow === 'true')).toBe(true);
  });

  it('creates, labels and cleans up additional services', async () => {
    const { runner } = await setup();
    const spec = {
      entity: 'e',
      project: 'p',
      additional_services: [{ config: { apiVersion: 'v1', kind: 'Service', metadata: { name: 'db' }, spec: { ports: [{ port: 5432 }] } } }],
    };
    const run = await runner.run(kubeRequest({ ...ids(), spec, entryPoint: ['sh', '-c'], args: ['sleep 1'] }), ctx);
    const svc = server!.getObject('/api/v1/namespaces/default/services/db') as Obj;
    expect(svc.metadata.labels['wandb.ai/created-by']).toBe('launch-agent');
    await run.wait();
    expect(server!.getObject('/api/v1/namespaces/default/services/db')).toBeUndefined();
  });
});
