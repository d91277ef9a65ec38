import { ApiException, type V1Job, type V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { KubeletStep } from './kubelet.js';
import type { KubeTestServer, KubeTestServerOptions } from './server.js';
import { clientsFor, eventually, jobManifest, useKubeServer } from './test-helpers.js';

let server: KubeTestServer | undefined;
const fixture = useKubeServer();
async function setup(options: KubeTestServerOptions = {}) {
  const made = await fixture.setup(options);
  server = made.server;
  return made;
}

async function failure(promise: Promise<unknown>) {
  try {
    await promise;
  } catch (error) {
    const e = error as ApiException<unknown>;
    return { code: e.code, body: (typeof e.body === 'string' ? JSON.parse(e.body) : e.body) as Record<string, any> };
  }
  throw new Error('expected failure');
}

const jobPath = (name: string, ns = 'default') => `/apis/batch/v1/namespaces/${ns}/jobs/${name}`;
type Job = { status?: Record<string, any>; spec?: Record<string, any>; metadata: Record<string, any> };
type Pod = Omit<V1Pod, 'status'> & { status: Record<string, any> };

function condition(obj: { status?: Record<string, any> } | undefined, type: string) {
  return (obj?.status?.conditions ?? []).find((c: { type: string }) => c.type === type);
}

describe('kube test server: job controller and default kubelet', () => {
  it('runs a job: pod with job labels and owner reference, phases to Succeeded, job Complete, logs served', async () => {
    const { batch, core } = await setup();
    const job = await batch.createNamespacedJob({
      namespace: 'default',
      body: jobManifest('hello', ['sh', '-c', 'echo hello && echo world']) as V1Job,
    });
    expect(job.spec?.selector?.matchLabels).toEqual({ 'batch.kubernetes.io/controller-uid': job.metadata!.uid });
    expect(job.spec?.template.spec?.containers[0]!.imagePullPolicy).toBe('IfNotPresent');
    const done = await eventually(() => {
      const j = server!.getObject(jobPath('hello')) as Job;
      return condition(j, 'Complete') ? j : undefined;
    });
    expect(done.status).toMatchObject({ succeeded: 1, ready: 0, terminating: 0 });
    expect(done.status!.active).toBeUndefined();
    expect(done.status!.startTime).toMatch(/Z$/);
    expect(done.status!.completionTime).toMatch(/Z$/);
    expect(condition(done, 'Complete')).toMatchObject({ status: 'True', reason: 'CompletionsReached' });
    expect(condition(done, 'SuccessCriteriaMet')).toMatchObject({ status: 'True' });

    const pods = await core.listNamespacedPod({ namespace: 'default', labelSelector: 'job-name=hello' });
    expect(pods.items).toHaveLength(1);
    const pod = pods.items[0]!;
    expect(pod.metadata!.name).toMatch(/^hello-[a-z0-9]{5}$/);
    expect(pod.metadata!.labels).toMatchObject({
      app: 'launch',
      'job-name': 'hello',
      'batch.kubernetes.io/job-name': 'hello',
      'controller-uid': job.metadata!.uid,
      'batch.kubernetes.io/controller-uid': job.metadata!.uid,
    });
    expect(pod.metadata!.ownerReferences).toEqual([
      { apiVersion: 'batch/v1', kind: 'Job', name: 'hello', uid: job.metadata!.uid, controller: true, blockOwnerDeletion: true },
    ]);
    expect(pod.spec!.nodeName).toBe('kind-worker');
    expect(pod.status!.phase).toBe('Succeeded');
    expect(pod.status!.containerStatuses![0]!.state!.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });

    const log = await core.readNamespacedPodLog({ name: pod.metadata!.name!, namespace: 'default' });
    expect(log).toBe('hello\nworld\n');
    const tail = await core.readNamespacedPodLog({ name: pod.metadata!.name!, namespace: 'default', tailLines: 1 });
    expect(tail).toBe('world\n');
  });

  it('walks the pod through Pending/ContainerCreating and Running on the watch, in order', async () => {
    const { batch } = await setup();
    const phases: string[] = [];
    const stop = server!.kubelet;
    stop.setDefault([{ pending: 'ContainerCreating' }, { running: true }, { wait: 10 }, { succeed: true }]);
    const { Watch } = await import('@kubernetes/client-node');
    const kc = clientsFor(server!).kc;
    const controller = await new Watch(kc).watch(
      '/api/v1/namespaces/default/pods',
      {},
      (_t, pod: Pod) => {
        const w = pod.status?.containerStatuses?.[0]?.state;
        phases.push(`${pod.status?.phase}:${w?.waiting?.reason ?? (w?.running ? 'running' : (w?.terminated?.reason ?? '-'))}`);
      },
      () => undefined,
    );
    await batch.createNamespacedJob({ namespace: 'default', body: jobManifest('p') as V1Job });
    await eventually(() => phases.includes('Succeeded:Completed'));
    controller.abort();
    const distinct = phases.filter((p, i) => p !== phases[i - 1]);
    expect(distinct).toEqual(['Pending:-', 'Pending:ContainerCreating', 'Running:running', 'Succeeded:Completed']);
  });

  it('maps `exit N` to a failed container and fails the job with BackoffLimitExceeded', async () => {
    const { batch, core } = await setup();
    await batch.createNamespacedJob({ namespace: 'default', body: jobManifest('bad', ['sh', '-c', 'exit 3']) as V1Job });
    const failed = await eventually(() => {
      const j = server!.getObject(jobPath('bad')) as Job;
      return condition(j, 'Failed') ? j : undefined;
    });
    expect(condition(failed, 'Failed')).toMatchObject({
      status: 'True',
      reason: 'BackoffLimitExceeded',
      message: 'Job has reached the specified backoff limit',
    });
    expect(condition(failed, 'FailureTarget')).toMatchObject({ reason: 'BackoffLimitExceeded' });
    expect(failed.status).toMatchObject({ failed: 1 });
    const pods = await core.listNamespacedPod({ namespace: 'default', labelSelector: 'job-name=bad' });
    expect(pods.items[0]!.status!.phase).toBe('Failed');
    expect(pods.items[0]!.status!.containerStatuses![0]!.state!.terminated).toMatchObject({ exitCode: 3, reason: 'Error' });
  });

  it('retries up to backoffLimit with new pods', async () => {
    const { batch, core } = await setup();
    const body = jobManifest('retry', ['sh', '-c', 'exit 1']);
    body.spec.backoffLimit = 2;
    await batch.createNamespacedJob({ namespace: 'default', body: body as V1Job });
    const failed = await eventually(() => {
      const j = server!.getObject(jobPath('retry')) as Job;
      return condition(j, 'Failed') ? j : undefined;
    });
    expect(failed.status!.failed).toBe(3);
    const pods = await core.listNamespacedPod({ namespace: 'default', labelSelector: 'job-name=retry' });
    expect(pods.items).toHaveLength(3);
  });

  it('`sleep N` keeps the pod running for N scaled seconds', async () => {
    const { batch } = await setup({ timeScale: 0.1 });
    await batch.createNamespacedJob({ namespace: 'default', body: jobManifest('sleepy', ['sh', '-c', 'sleep 3']) as V1Job });
    const started = Date.now();
    await eventually(() => condition(server!.getObject(jobPath('sleepy')) as Job, 'Complete'));
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('fails a job past activeDeadlineSeconds with DeadlineExceeded and kills its pod', async () => {
    const { batch, core } = await setup({ timeScale: 0.01 });
    await batch.createNamespacedJob({
      namespace: 'default',
      body: jobManifest('slow', ['sh', '-c', 'sleep 1000'], { activeDeadlineSeconds: 10 }) as V1Job,
    });
    const failed = await eventually(() => {
      const j = server!.getObject(jobPath('slow')) as Job;
      return condition(j, 'Failed') ? j : undefined;
    });
    expect(condition(failed, 'Failed')).toMatchObject({ reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' });
    await eventually(async () => (await core.listNamespacedPod({ namespace: 'default', labelSelector: 'job-name=slow' })).items.length === 0);
  });

  it('deletes a finished job and its pods after ttlSecondsAfterFinished', async () => {
    const { batch, core } = await setup({ timeScale: 0.01 });
    await batch.createNamespacedJob({
      namespace: 'default',
      body: jobManifest('short', ['sh', '-c', 'echo bye'], { ttlSecondsAfterFinished: 20 }) as V1Job,
    });
    const finishedAt = await eventually(() => (condition(server!.getObject(jobPath('short')) as Job, 'Complete') ? Date.now() : undefined));
    // Logs are readable before the TTL passes…
    const pods = await core.listNamespacedPod({ namespace: 'default', labelSelector: 'job-name=short' });
    expect(await core.readNamespacedPodLog({ name: pods.items[0]!.metadata!.name!, namespace: 'default' })).toBe('bye\n');
    // …and then the job and its pods are gone.
    await eventually(() => server!.getObject(jobPath('short')) === undefined);
    expect(Date.now() - finishedAt).toBeGreaterThanOrEqual(150);
    await eventually(() => server!.listObjects('/api/v1/namespaces/default/pods').length === 0);
  });

  it('foreground deletion removes the pods before the job; the default (orphan) policy for Jobs leaves them', async () => {
    const { batch } = await setup();
    server!.kubelet.setDefault([{ running: true }]);
    await batch.createNamespacedJob({ namespace: 'default', body: jobManifest('fg') as V1Job });
    await batch.createNamespacedJob({ namespace: 'default', body: jobManifest('orphan') as V1Job });
    const running = (name: string) =>
      (server!.listObjects('/api/v1/namespaces/default/pods') as Pod[]).filter(
        (p) => p.metadata?.labels?.['job-name'] === name && p.status.phase === 'Running',
      );
    await eventually(() => running('fg').length === 1 && running('orphan').length === 1);

    const res = await batch.deleteNamespacedJob({ name: 'fg', namespace: 'default', propagationPolicy: 'Foreground' });
    expect(res).toBeDefined();
    const marked = server!.getObject(jobPath('fg')) as Job | undefined;
    expect(marked?.metadata.deletionTimestamp).toBeDefined();
    expect(marked?.metadata.finalizers).toContain('foregroundDeletion');
    await eventually(() => server!.getObject(jobPath('fg')) === undefined);
    expect((server!.listObjects('/api/v1/namespaces/default/pods') as Pod[]).filter((p) => p.metadata?.labels?.['job-name'] === 'fg')).toEqual([]);

    await batch.deleteNamespacedJob({ name: 'orphan', namespace: 'default' });
    expect(server!.getObject(jobPath('orphan'))).toBeUndefined();
    const left = (server!.listObjects('/api/v1/namespaces/default/pods') as Pod[]).filter((p) => p.metadata?.labels?.['job-name'] === 'orphan');
    expect(left).toHaveLength(1);
    expect(left[0]!.metadata!.ownerReferences).toBeUndefined();

    const missing = await failure(batch.deleteNamespacedJob({ name: 'fg', namespace: 'default', propagationPolicy: 'Foreground' }));
    expect(missing.code).toBe(404);
  });

  it('background deletion removes the job at once and its pods soon after', async () => {
    const { batch } = await setup();
    server!.kubelet.setDefault([{ running: true }]);
    await batch.createNamespacedJob({ namespace: 'default', body: jobManifest('bg') as V1Job });
    await eventually(() => server!.listObjects('/api/v1/namespaces/default/pods').length === 1);
    await batch.deleteNamespacedJob({ name: 'bg', namespace: 'default', propagationPolicy: 'Background' });
    expect(server!.getObject(jobPath('bg'))).toBeUndefined();
    await eventually(() => server!.listObjects('/api/v1/namespaces/default/pods').length === 0);
  });
});

describe('kube test server: validation', () => {
  it('refuses a Job without containers with a 422 naming the field', async () => {
    const { batch } = await setup();
    const body = jobManifest('nocontainers') as any;
    delete body.spec.template.spec.containers;
    const res = await failure(batch.createNamespacedJob({ namespace: 'default', body }));
    expect(res.code).toBe(422);
    expect(res.body).toMatchObject({
      kind: 'Status',
      reason: 'Invalid',
      message: 'Job.batch "nocontainers" is invalid: spec.template.spec.containers: Required value',
      details: { name: 'nocontainers', group: 'batch', kind: 'Job', causes: [{ reason: 'FieldValueRequired', field: 'spec.template.spec.containers' }] },
    });
  });

  it('refuses bad names, label values, restart policies and env names', async () => {
    const { batch, core } = await setup();
    const badName = await failure(batch.createNamespacedJob({ namespace: 'default', body: jobManifest('Bad_Name') as V1Job }));
    expect(badName.code).toBe(422);
    expect(badName.body.message).toMatch(/^Job\.batch "Bad_Name" is invalid: metadata\.name: Invalid value: "Bad_Name": a lowercase RFC 1123 label/);

    const label = jobManifest('labels') as any;
    label.metadata.labels = { 'wandb.ai/run-id': 'has space' };
    const badLabel = await failure(batch.createNamespacedJob({ namespace: 'default', body: label }));
    expect(badLabel.body.details.causes[0]).toMatchObject({ field: 'metadata.labels', reason: 'FieldValueInvalid' });

    const always = jobManifest('always') as any;
    always.spec.template.spec.restartPolicy = 'Always';
    const badPolicy = await failure(batch.createNamespacedJob({ namespace: 'default', body: always }));
    expect(badPolicy.body.message).toBe(
      'Job.batch "always" is invalid: spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never"',
    );

    const env = jobManifest('env') as any;
    env.spec.template.spec.containers[0].env = [{ name: '1BAD', value: 'x' }];
    const badEnv = await failure(batch.createNamespacedJob({ namespace: 'default', body: env }));
    expect(badEnv.body.details.causes[0].field).toBe('spec.template.spec.containers[0].env[0].name');

    const typed = jobManifest('typed') as any;
    typed.spec.template.spec.containers[0].env = [{ name: 'N', value: 3 }];
    const badType = await failure(batch.createNamespacedJob({ namespace: 'default', body: typed }));
    expect(badType.code).toBe(400);
    expect(badType.body.reason).toBe('BadRequest');

    const pod = await failure(
      core.createNamespacedPod({ namespace: 'default', body: { metadata: { name: 'p' }, spec: { containers: [{ name: 'c' }] } as any } }),
    );
    expect(pod.body.message).toBe('Pod "p" is invalid: spec.containers[0].image: Required value');
    expect(server!.listObjects('/apis/batch/v1/namespaces/default/jobs')).toEqual([]);
  });

  it('with validate: false accepts what the schema would refuse but still checks names', async () => {
    const { batch } = await setup({ validate: false });
    const body = jobManifest('loose') as any;
    body.spec.template.spec.containers[0].env = [{ name: 'N', value: 3 }];
    await batch.createNamespacedJob({ namespace: 'default', body });
    const res = await failure(batch.createNamespacedJob({ namespace: 'default', body: jobManifest('UPPER') as V1Job }));
    expect(res.code).toBe(422);
  });
});

describe('kube test server: scripted kubelet steps produce the real pod status shapes', () => {
  async function podAfter(steps: KubeletStep[], predicate: (p: Pod) => boolean, name = 'scripted') {
    const { batch } = await setup();
    server!.kubelet.script({ name: new RegExp(`^${name}$`) }, steps);
    await batch.createNamespacedJob({ namespace: 'default', body: jobManifest(name) as V1Job });
    return eventually(() =>
      (server!.listObjects('/api/v1/namespaces/default/pods') as Pod[]).find((p) => p.metadata?.labels?.['job-name'] === name && predicate(p)),
    );
  }
  const state = (p: Pod) => p.status.containerStatuses?.[0]?.state ?? {};

  it('unschedulable: PodScheduled=False, reason Unschedulable, with the scheduler message', async () => {
    const message = '0/3 nodes are available: 3 Insufficient nvidia.com/gpu.';
    const pod = await podAfter([{ unschedulable: message }], (p) => condition(p, 'PodScheduled') !== undefined);
    expect(pod.status.phase).toBe('Pending');
    expect(condition(pod, 'PodScheduled')).toMatchObject({ status: 'False', reason: 'Unschedulable', message });
    expect(pod.status.containerStatuses).toBeUndefined();
    expect(pod.spec?.nodeName).toBeUndefined();
  });

  it('ErrImagePull and ImagePullBackOff: waiting reasons with messages', async () => {
    const pod = await podAfter([{ pending: 'ContainerCreating' }, { imagePull: 'ErrImagePull' }], (p) => state(p).waiting?.reason === 'ErrImagePull');
    expect(pod.status.phase).toBe('Pending');
    expect(state(pod).waiting.message).toContain('busybox:1.36');
    const backoff = await podAfter(
      [{ imagePull: 'ImagePullBackOff', message: 'Back-off pulling image "x"' }],
      (p) => state(p).waiting?.reason === 'ImagePullBackOff',
    );
    expect(state(backoff).waiting.message).toBe('Back-off pulling image "x"');
    expect(condition(backoff, 'Ready')).toMatchObject({ status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [main]' });
  });

  it('CrashLoopBackOff: waiting with lastState.terminated and restartCount', async () => {
    const pod = await podAfter([{ running: true }, { crashLoop: { restartCount: 4, exitCode: 2 } }], (p) => state(p).waiting?.reason === 'CrashLoopBackOff');
    const cs = pod.status.containerStatuses[0];
    expect(pod.status.phase).toBe('Running');
    expect(cs.restartCount).toBe(4);
    expect(cs.ready).toBe(false);
    expect(cs.lastState.terminated).toMatchObject({ exitCode: 2, reason: 'Error' });
    expect(cs.state.waiting.message).toMatch(/^back-off \d+s restarting failed container=main pod=scripted-/);
  });

  it('OOMKilled: terminated exit 137, pod Failed', async () => {
    const pod = await podAfter([{ running: true }, { fail: { exitCode: 137, reason: 'OOMKilled' } }], (p) => p.status.phase === 'Failed');
    expect(state(pod).terminated).toMatchObject({ exitCode: 137, reason: 'OOMKilled' });
  });

  it('evicted: phase Failed, reason Evicted, DisruptionTarget by the kubelet', async () => {
    const message = 'The node was low on resource: memory.';
    const pod = await podAfter([{ running: true }, { evict: message }], (p) => p.status.phase === 'Failed');
    expect(pod.status).toMatchObject({ reason: 'Evicted', message });
    expect(condition(pod, 'DisruptionTarget')).toMatchObject({ status: 'True', reason: 'TerminationByKubelet' });
  });

  it('preempted by the scheduler: DisruptionTarget, then the pod is killed and deleted; the job counts a failure', async () => {
    const { batch, kc } = await setup();
    server!.kubelet.script({ label: { app: 'launch' } }, [{ running: true }, { preempt: 'PreemptionByScheduler' }]);
    const seen: Pod[] = [];
    const { Watch } = await import('@kubernetes/client-node');
    const controller = await new Watch(kc).watch(
      '/api/v1/namespaces/default/pods',
      {},
      (type, p: Pod) => {
        if (type !== 'ADDED') seen.push(p);
      },
      () => undefined,
    );
    await batch.createNamespacedJob({ namespace: 'default', body: jobManifest('pre') as V1Job });
    await eventually(() => condition(server!.getObject(jobPath('pre')) as Job, 'Failed'));
    controller.abort();
    const disrupted = seen.find((p) => condition(p, 'DisruptionTarget'));
    expect(condition(disrupted, 'DisruptionTarget')).toMatchObject({ reason: 'PreemptionByScheduler', status: 'True' });
    expect(seen.some((p) => p.metadata?.deletionTimestamp)).toBe(true);
    await eventually(() => server!.listObjects('/api/v1/namespaces/default/pods').length === 0);
  });

  it('PodInitializing: init containers running, app containers waiting', async () => {
    const { batch } = await setup();
    server!.kubelet.script({ image: 'busybox:1.36' }, [{ pending: 'PodInitializing' }]);
    const body = jobManifest('init') as any;
    body.spec.template.spec.initContainers = [{ name: 'fetch-code', image: 'wandb/launch-agent:0.25.1' }];
    await batch.createNamespacedJob({ namespace: 'default', body });
    const pod = await eventually(() =>
      (server!.listObjects('/api/v1/namespaces/default/pods') as Pod[]).find((p) => state(p).waiting?.reason === 'PodInitializing'),
    );
    expect(pod.status.initContainerStatuses[0].state.running).toBeDefined();
    expect(condition(pod, 'Initialized')).toMatchObject({ status: 'False', reason: 'ContainersNotInitialized' });
  });

  it('pause freezes pods where they are; resume lets them finish', async () => {
    const { batch } = await setup();
    server!.kubelet.setDefault([{ running: true }, { wait: 20 }, { succeed: true }]);
    await batch.createNamespacedJob({ namespace: 'default', body: jobManifest('frozen') as V1Job });
    // Running and seen as ready by the job controller: from here on only the kubelet would change anything.
    await eventually(() => (server!.getObject(jobPath('frozen')) as Job).status?.ready === 1);
    server!.kubelet.pause();
    const rv = server!.resourceVersion();
    await new Promise((r) => setTimeout(r, 150)); // asserting that nothing happens needs a window of time
    expect(server!.resourceVersion()).toBe(rv);
    server!.kubelet.resume();
    await eventually(() => condition(server!.getObject(jobPath('frozen')) as Job, 'Complete'));
  });
});

describe('kube test server: pod logs', () => {
  it('honours tailLines, container and previous, and answers 400 for containers not started', async () => {
    const { core } = await setup();
    server!.kubelet.script({ name: /^two$/ }, [
      { pending: 'ContainerCreating' },
      { wait: 80 },
      { running: true },
      { log: 'a\nb\nc' },
      { log: 'side', container: 'sidecar' },
    ]);
    await core.createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name: 'two' },
        spec: {
          containers: [
            { name: 'main', image: 'x:1' },
            { name: 'sidecar', image: 'y:1' },
          ],
        },
      },
    });
    await eventually(() => (server!.getObject('/api/v1/namespaces/default/pods/two') as Pod).status.containerStatuses?.[0]?.state?.waiting);
    const waiting = await failure(core.readNamespacedPodLog({ name: 'two', namespace: 'default', container: 'main' }));
    expect(waiting.code).toBe(400);
    expect(waiting.body.message).toBe('container "main" in pod "two" is waiting to start: ContainerCreating');
    const noContainer = await failure(core.readNamespacedPodLog({ name: 'two', namespace: 'default' }));
    expect(noContainer.body.message).toBe('a container name must be specified for pod two, choose one of: [main sidecar]');
    const unknown = await failure(core.readNamespacedPodLog({ name: 'two', namespace: 'default', container: 'nope' }));
    expect(unknown.body.message).toBe('container nope is not valid for pod two');
    await eventually(async () => (await core.readNamespacedPodLog({ name: 'two', namespace: 'default', container: 'sidecar' })) === 'side\n');
    expect(await core.readNamespacedPodLog({ name: 'two', namespace: 'default', container: 'main', tailLines: 2 })).toBe('b\nc\n');
    expect(await core.readNamespacedPodLog({ name: 'two', namespace: 'default', container: 'main', tailLines: 0 })).toBe('');
    const previous = await failure(core.readNamespacedPodLog({ name: 'two', namespace: 'default', container: 'main', previous: true }));
    expect(previous.body.message).toBe('previous terminated container "main" in pod "two" not found');
    const gone = await failure(core.readNamespacedPodLog({ name: 'ghost', namespace: 'default' }));
    expect(gone.code).toBe(404);
  });
});
