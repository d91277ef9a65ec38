/**
 * The chart's Roles against what the Kubernetes runner really calls: the chart's ConfigMap, Secrets and
 * ServiceAccount are applied to the Kubernetes test server, real runs go through the runner the agent uses (as the
 * binary configures it under the chart: agent name and release from the chart's environment), and every request
 * the runner made must be granted by the rendered Role of its namespace. Cluster-wide lists answer 403, as they do
 * under the chart's namespaced RBAC.
 */
import type { RunRequest, RunStatus, SubmittedRun } from '@launch/core';
import { createKubernetesRunner, type KubernetesRunner } from '@launch/runners/kubernetes';
import { startKubeTestServer, type KubeRecordedRequest, type KubeTestServer } from '@launch/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { find, startHelm, type Helm, type KubeObject } from './helm.js';

const RELEASE = 'launch';
const AGENT_NS = 'wandb';
const TARGETS = ['ml', 'default', AGENT_NS];
const KEY = 'chart-key-0123456789abcdef0123456789abcdef';
const ctx = { logger: { debug() {}, info() {}, warn() {}, error() {} } };

let helm: Helm;
let server: KubeTestServer;
let rendered: KubeObject[];
const runners: KubernetesRunner[] = [];

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

beforeAll(async () => {
  helm = await startHelm();
  rendered = await helm.template({
    release: RELEASE,
    setJson: { namespace: AGENT_NS, additionalTargetNamespaces: ['ml', 'default'], 'agent.apiKey': KEY, volcano: true },
  });
  server = await startKubeTestServer({ kubelet: { stepDelayMs: 5 }, timeScale: 0.01, namespaces: TARGETS });
  // Apply what the chart makes that the test server serves (it has no RBAC or policy kinds).
  for (const obj of rendered.filter((o) => ['ConfigMap', 'Secret', 'ServiceAccount'].includes(o.kind))) {
    const plural = `${obj.kind.toLowerCase()}s`;
    const res = await fetch(`${server.url}/api/v1/namespaces/${obj.metadata.namespace}/${plural}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(obj),
    });
    if (res.status !== 201) throw new Error(`applying ${obj.kind} ${obj.metadata.namespace}/${obj.metadata.name}: ${res.status} ${await res.text()}`);
  }
  // Under the chart the agent may not list across the cluster: the runner must fall back to its namespace.
  server.injectFault({ method: 'GET', path: /^\/apis\/[^/]+\/[^/]+\/(jobs|pytorchjobs|tfjobs|mpijobs|jobsets|rayjobs)$/, status: 403 });
}, 180_000);

afterAll(async () => {
  for (const r of runners) await r.close();
  await server?.close();
  helm?.close();
});

/** The runner as the binary builds it in the pod the chart makes: env LAUNCH_AGENT_NAME and WANDB_RELEASE_NAME. */
function chartRunner(): KubernetesRunner {
  const env = Object.fromEntries(
    find(rendered, 'Deployment')[0]!
      .spec.template.spec.containers[0].env.filter((e: { value?: string }) => e.value !== undefined)
      .map((e: { name: string; value: string }) => [e.name, e.value]),
  );
  const runner = createKubernetesRunner({
    kubeconfigPath: server.kubeconfigPath,
    agentName: env.LAUNCH_AGENT_NAME,
    releaseName: env.WANDB_RELEASE_NAME,
    namespace: AGENT_NS,
    watchBackoffMs: { initial: 10, max: 100 },
  });
  runners.push(runner);
  return runner;
}

let n = 0;
function request(overrides: Partial<RunRequest>): RunRequest {
  n++;
  const runId = `rbac${n}x${Date.now().toString(36)}`;
  return {
    runId,
    itemId: `item-${n}-${Math.random().toString(36).slice(2)}`,
    queue: 'gpu',
    agentName: RELEASE,
    spec: { entity: 'team', project: 'proj', resource: 'kubernetes', docker: { docker_image: 'ghcr.io/acme/train:1' } },
    image: 'ghcr.io/acme/train:1',
    entryPoint: ['sh', '-c'],
    args: ['exit 0'],
    env: { WANDB_API_KEY: KEY, WANDB_RUN_ID: runId },
    resourceArgs: {},
    ...overrides,
  };
}

function until(run: SubmittedRun, pred: (s: RunStatus) => boolean, timeoutMs = 30_000): Promise<RunStatus> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timed out waiting for a run status')), timeoutMs);
    const check = (s: RunStatus) => {
      if (!pred(s)) return;
      clearTimeout(t);
      off();
      resolve(s);
    };
    const off = run.onStatus(check);
    void run.status().then(check);
  });
}

/** The RBAC attributes of an API request, as kube-apiserver's request-info resolver derives them. */
function attributes(r: KubeRecordedRequest): { verb: string; group: string; resource: string; namespace?: string } | undefined {
  const s = r.path.split('/').filter(Boolean);
  let rest: string[];
  let group: string;
  if (s[0] === 'api' && s[1] === 'v1') [group, rest] = ['', s.slice(2)];
  else if (s[0] === 'apis' && s.length >= 3) [group, rest] = [s[1]!, s.slice(3)];
  else return undefined; // discovery (/api, /apis, /version): allowed to every authenticated user
  if (rest[0] === 'watch') rest = rest.slice(1);
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const [resource, name, sub] = rest;
  if (!resource) return undefined;
  const collection = name === undefined;
  const verb = r.watch
    ? 'watch'
    : (
        { GET: collection ? 'list' : 'get', POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: collection ? 'deletecollection' : 'delete' } as Record<
          string,
          string
        >
      )[r.method]!;
  return { verb, group, resource: sub ? `${resource}/${sub}` : resource, ...(namespace ? { namespace } : {}) };
}

function granted(a: NonNullable<ReturnType<typeof attributes>>): boolean {
  if (!a.namespace) return false; // nothing cluster-wide is granted
  const role = find(rendered, 'Role', `launch-agent-${RELEASE}`, a.namespace)[0];
  return (
    (role?.rules as Rule[] | undefined)?.some(
      (rule) => rule.apiGroups.includes(a.group) && rule.resources.includes(a.resource) && rule.verbs.includes(a.verb),
    ) ?? false
  );
}

describe('the chart’s RBAC covers what the Kubernetes runner calls', () => {
  it('runs, fails, cancels, adopts, Volcano and additional services, each request granted in its namespace', async () => {
    const runner = chartRunner();
    const from = server.requests.length;

    // A plain Job in a target namespace that finishes; it reads the key from the chart's secret there.
    const ok = await runner.run(request({ resourceArgs: { namespace: 'ml' } }), ctx);
    expect((await ok.wait()).state).toBe('finished');
    const job = server.listObjects('/apis/batch/v1/namespaces/ml/jobs').find((j) => (j as KubeObject).metadata.name === ok.id) as KubeObject | undefined;
    const keyRef = job?.spec.template.spec.containers[0].env.find((e: { name: string }) => e.name === 'WANDB_API_KEY');
    expect(keyRef?.valueFrom?.secretKeyRef).toEqual({ name: `wandb-api-key-${RELEASE}`, key: 'password' });

    // A failing one in another: its log tail is read.
    const bad = await runner.run(request({ resourceArgs: { namespace: 'default' }, args: ['echo boom; exit 3'] }), ctx);
    expect((await bad.wait()).state).toBe('failed');

    // A Volcano job.
    const volcano = await runner.run(
      request({
        resourceArgs: {
          namespace: 'ml',
          apiVersion: 'batch.volcano.sh/v1alpha1',
          kind: 'Job',
          spec: {
            minAvailable: 1,
            schedulerName: 'volcano',
            tasks: [{ name: 'main', replicas: 1, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'm' }] } } }],
          },
        },
      }),
      ctx,
    );
    expect((await volcano.wait()).state).toBe('finished');
    // Each end recorded at the queue, as the agent does it: the runner removes its finalizer from the run object.
    for (const run of [ok, bad, volcano]) await run.reported!();
    const patched = server.requests.filter((r) => r.method === 'PATCH' && [ok, bad, volcano].some((run) => r.path.endsWith(`/jobs/${run.id}`)));
    expect(patched.map((r) => r.status)).toEqual([200, 200, 200]);

    // additional_services next to a job in the agent's namespace.
    const withService = await runner.run(
      request({
        spec: {
          entity: 'team',
          project: 'proj',
          additional_services: [{ config: { apiVersion: 'v1', kind: 'Service', metadata: { name: 'db' }, spec: { ports: [{ port: 5432 }] } } }],
        },
        args: ['sleep 1'],
      }),
      ctx,
    );
    await withService.wait();

    // A cancelled one: the Job is deleted. (The server scales `sleep N` by timeScale: 100000 s is 1000 s here.)
    const long = await runner.run(request({ resourceArgs: { namespace: 'ml' }, args: ['sleep 100000'] }), ctx);
    await until(long, (s) => s.state === 'running');
    await long.cancel();
    expect((await long.wait()).state).toBe('stopped');

    // A restarted agent adopts a running Job (cluster-wide list forbidden: it lists its own namespace).
    const orphan = await runner.run(request({ resourceArgs: { namespace: AGENT_NS }, args: ['sleep 100000'] }), ctx);
    await until(orphan, (s) => s.state === 'running');
    const restarted = chartRunner();
    const adopted = await restarted.adopt(RELEASE, ctx);
    expect(adopted.map((r) => r.id)).toContain(orphan.id);
    const mine = adopted.find((r) => r.id === orphan.id)!;
    await mine.cancel();
    expect((await mine.wait()).state).toBe('stopped');
    await Promise.all(adopted.map((r) => r.wait()));

    const made = server.requests.slice(from).filter((r) => r.user !== undefined);
    const attrs = made.map(attributes).filter((a) => a !== undefined);
    // The runner did reach every kind of call the Role grants…
    const seen = new Set(attrs.map((a) => `${a.group}/${a.resource}:${a.verb}`));
    for (const call of [
      'batch/jobs:create',
      'batch/jobs:list',
      'batch/jobs:watch',
      'batch/jobs:delete',
      'batch/jobs:patch',
      'batch.volcano.sh/jobs:patch',
      '/pods:list',
      '/pods:watch',
      '/pods/log:get',
      'batch.volcano.sh/jobs:create',
      '/services:create',
      '/services:delete',
    ]) {
      expect(seen, call).toContain(call);
    }
    // …and every request it made in a namespace is granted there; the only refused ones are the cluster-wide lists.
    const refused = attrs.filter((a) => !granted(a)).map((a) => `${a.verb} ${a.group}/${a.resource} in ${a.namespace ?? '(cluster)'}`);
    expect(
      [...new Set(refused)].every((r) => r.startsWith('list ') && r.endsWith('in (cluster)')),
      refused.join('\n'),
    ).toBe(true);
    expect(refused.length).toBeGreaterThan(0);
  }, 120_000);
});
