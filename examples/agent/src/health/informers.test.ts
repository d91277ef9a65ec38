import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKubernetesRunner, type KubernetesRunner } from '@launch/runners/kubernetes';
import { createLocalProcessRunner } from '@launch/runners/local-process';
import { startKubeTestServer, waitFor, type KubeTestServer } from '@launch/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { agentFixture, cleanUp, jobsEnded, metric, scrape, within } from './test-helpers.js';

let server: KubeTestServer | undefined;
let kube: KubernetesRunner | undefined;
let dir: string | undefined;
afterEach(async () => {
  await cleanUp();
  await kube?.close();
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  server = kube = dir = undefined;
});

describe('Kubernetes informer metrics', () => {
  it('export the Kubernetes runner watch counters, and count its jobs like any other', async () => {
    server = await startKubeTestServer({ kubelet: { stepDelayMs: 5 }, timeScale: 0.01, namespaces: ['default'] });
    kube = createKubernetesRunner({ kubeconfigPath: server.kubeconfigPath, watchBackoffMs: { initial: 10, max: 100 } });
    dir = await mkdtemp(join(tmpdir(), 'launch-health-kube-'));
    const runners = [createLocalProcessRunner({ logDir: dir }), kube];
    const { agent, queue, health } = await agentFixture({ agent: { runners } });
    server.kubelet.script({ image: 'img/train:1' }, [{ running: true }, { wait: 2000 }, { succeed: true }]);
    await queue.enqueue({ queue: 'gpu', spec: { resource: 'kubernetes', docker: { docker_image: 'img/train:1' } } });
    const running = new Promise<void>((resolve) => agent.on('run:state', ({ state }) => state === 'running' && resolve()));
    const states: string[] = [];
    agent.on('run:state', ({ state }) => states.push(state));
    agent.on('item:failed', ({ message }) => states.push(`failed: ${message}`));
    const ended = jobsEnded(agent, 1);
    await agent.start();
    await within(running, () => `the pod to run (states seen: ${states.join(', ')})`);

    // Break every watch while the pod runs: the runner's informers reconnect.
    server.kubelet.pause();
    server.breakWatches();
    await waitFor(() => kube!.watchStats().reconnects + kube!.watchStats().relists410 > 0, { what: 'the informers to reconnect' });
    server.kubelet.resume();
    await within(ended, () => `the job to end (states seen: ${states.join(', ')})`);

    const before = kube.watchStats();
    const m = await scrape(health);
    const after = kube.watchStats();
    const reconnects = metric(m, 'launch_informer_reconnects_total');
    expect(reconnects).toBeGreaterThanOrEqual(before.reconnects);
    expect(reconnects).toBeLessThanOrEqual(after.reconnects);
    expect(reconnects + metric(m, 'launch_informer_relists_total')).toBeGreaterThan(0);
    expect(metric(m, 'launch_informer_watches_total')).toBeGreaterThanOrEqual(before.watches);
    expect(metric(m, 'launch_informers')).toBe(after.informers);
    expect(after.informers).toBeGreaterThan(0);
    expect(metric(m, 'launch_jobs_total', { queue: 'gpu', state: 'finished' })).toBe(1);
    expect(metric(m, 'launch_run_duration_seconds_count', { queue: 'gpu', state: 'finished' })).toBe(1);
  });
});
