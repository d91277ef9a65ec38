import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAgent, createEmbeddedQueue, type Agent, type EmbeddedQueue, type ItemRecord } from '@launch/core';
import { startKubeTestServer, type KubeTestServer } from '@launch/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { LABEL, labelValue } from './labels.js';
import { createKubernetesRunner, type KubernetesRunner } from './runner.js';
import { COREWEAVE_ARGS } from './test-fixtures.js';

type Obj = Record<string, any>;

let server: KubeTestServer;
let queue: EmbeddedQueue;
let agent: Agent;
let runner: KubernetesRunner;
let dir: string;

async function start(runnerOptions: Parameters<typeof createKubernetesRunner>[0] = {}, agentOptions: { startTimeout?: number } = {}) {
  server = await startKubeTestServer({ kubelet: { stepDelayMs: 5 }, timeScale: 0.01 });
  dir = await mkdtemp(join(tmpdir(), 'launch-k8s-agent-'));
  queue = createEmbeddedQueue({ stateDir: join(dir, 'queue'), fsync: false });
  runner = createKubernetesRunner({
    kubeconfigPath: server.kubeconfigPath,
    agentName: 'e2e-agent',
    watchBackoffMs: { initial: 10, max: 100 },
    ...runnerOptions,
  });
  agent = createAgent({
    source: queue,
    queues: ['gpu'],
    runners: [runner],
    maxJobs: -1,
    monitorIntervalMs: 50,
    defaultResource: 'kubernetes',
    env: {},
    apiKey: 'agent-api-key-1234567890',
    baseUrl: 'https://api.wandb.ai',
    ...agentOptions,
  });
  await agent.start();
}

afterEach(async () => {
  await agent?.stop();
  await runner?.close();
  await queue?.close();
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function settled(id: string, timeoutMs = 15_000): Promise<ItemRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await queue.get(id);
    if (r && (r.state === 'finished' || r.state === 'failed')) return r;
    if (Date.now() > deadline) throw new Error(`item ${id} did not end (state ${r?.state})`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

describe('kubernetes runner through the agent', () => {
  it("runs the seed chart's CoreWeave queue config end to end", async () => {
    await start();
    const args = structuredClone(COREWEAVE_ARGS) as Obj;
    args.spec.template.spec.containers[0].image = '${image_uri}';
    args.spec.template.spec.containers[0].args = ['sh', '-c', 'echo fine-tuning; exit 0'];
    const item = await queue.enqueue({
      queue: 'gpu',
      spec: {
        entity: 'acme',
        project: 'llm',
        docker: { docker_image: 'ghcr.io/acme/finetune:3' },
        resource: 'kubernetes',
        resource_args: { kubernetes: args },
      },
    });
    const record = await settled(item.id);
    expect(record.state).toBe('finished');
    expect(record.runState).toBe('finished');
    const job = (server.listObjects('/apis/batch/v1/namespaces/default/jobs') as Obj[]).find((j) => j.metadata.annotations['launch.dev/item-id'] === item.id);
    // ttlSecondsAfterFinished may already have removed it; the creation request was validated by the server either way.
    const created = server.requests.filter((r) => r.method === 'POST' && r.path === '/apis/batch/v1/namespaces/default/jobs');
    expect(created).toHaveLength(1);
    expect(created[0]!.status).toBe(201);
    if (job) {
      expect(job.spec.backoffLimit).toBe(1);
      const c = job.spec.template.spec.containers[0];
      expect(c.image).toBe('ghcr.io/acme/finetune:3');
      expect(c.resources.limits['nvidia.com/gpu']).toBe(1);
      expect(job.metadata.labels[LABEL.agent]).toBe('e2e-agent');
    }
  });

  it('each diagnosis reaches the queue as a Kubernetes warning with its hint, and in the fail message', async () => {
    await start({}, { startTimeout: 1.5 });
    const cases = [
      { category: 'ImagePullError', steps: [{ imagePull: 'ErrImagePull' as const }, { wait: 60_000 }], ends: 'failed' },
      {
        category: 'CrashLoopBackOff',
        steps: [{ running: true as const }, { crashLoop: { restartCount: 2 } }, { wait: 300 }, { fail: { exitCode: 1 } }],
        ends: 'failed',
      },
      { category: 'OOMKilled', steps: [{ running: true as const }, { log: 'allocating' }, { fail: { exitCode: 137, reason: 'OOMKilled' } }], ends: 'failed' },
      {
        category: 'Unschedulable',
        steps: [
          { unschedulable: "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector." },
          { wait: 300 },
          { running: true as const },
          { succeed: true as const },
        ],
        ends: 'finished',
      },
    ];
    const items = [];
    for (const c of cases) {
      const item = await queue.enqueue({
        queue: 'gpu',
        spec: { entity: 'acme', project: 'diag', docker: { docker_image: `img/${c.category.toLowerCase()}:1` } },
      });
      server.kubelet.script({ label: { [LABEL.itemId]: labelValue(item.id) } }, c.steps);
      items.push(item);
    }
    for (const [i, c] of cases.entries()) {
      const record = await settled(items[i]!.id);
      expect(record.state, c.category).toBe(c.ends);
      const warning = record.warnings.find((w) => w.message.startsWith(`${c.category}:`));
      expect(warning, `${c.category} warning in ${JSON.stringify(record.warnings)}`).toBeDefined();
      expect(warning!.stage).toBe('Kubernetes');
      expect(warning!.message).toMatch(/\(hint: .{20,}\)/);
      if (c.ends === 'failed') {
        expect(record.failure?.stage).toBe('run');
        expect(record.failure?.message).toMatch(/hint: /);
      }
    }
    const oom = await queue.get(items[2]!.id);
    expect(oom!.failure!.message).toContain('OOMKilled');
    expect(oom!.failure!.message).toContain('allocating');
    const pull = await queue.get(items[0]!.id);
    // One start timeout (the agent's), and its failure says what it last saw.
    expect(pull!.failure!.message).toContain('StartTimeout: the run did not start within 1.5 s (last seen: ImagePullError:');
    expect(pull!.failure!.message).toContain('img/imagepullerror:1');
  });

  it('an evicted run is requeued with the same run id', async () => {
    await start();
    const item = await queue.enqueue({ queue: 'gpu', spec: { entity: 'acme', project: 'evict', run_id: 'evictrun1', docker: { docker_image: 'img:1' } } });
    server.kubelet.script({ label: { [LABEL.itemId]: labelValue(item.id) } }, [{ running: true }, { evict: 'The node was low on resource: memory.' }]);
    const record = await settled(item.id);
    expect(record.runState).toBe('preempted');
    expect(record.warnings.some((w) => w.message.startsWith('Evicted:') && w.stage === 'Kubernetes')).toBe(true);
    const next = (await queue.list({ queue: 'gpu' })).find((r) => r.requeuedFrom === item.id)!;
    expect(next).toBeDefined();
    const again = await settled(next.id);
    expect(again.state).toBe('finished');
    expect(again.runId).toBe('evictrun1');
  });
});
