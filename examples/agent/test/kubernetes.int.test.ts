import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startKubeTestServer, type KubeTestServer } from '@launch/testkit';
import { assertBuilt, cli, sandbox, status } from './helpers.js';

beforeAll(() => assertBuilt());

let server: KubeTestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('launch-agent with a Kubernetes cluster', () => {
  it('runs `resource: kubernetes` jobs as Jobs when KUBECONFIG names a cluster, and reports a pull failure with its diagnosis', async () => {
    server = await startKubeTestServer({ kubelet: { stepDelayMs: 5 } });
    server.kubelet.script({ image: 'registry.local/missing:1' }, [
      { pending: 'ContainerCreating' },
      { imagePull: 'ErrImagePull', message: 'not found' },
      { imagePull: 'ImagePullBackOff' },
      { fail: { exitCode: 1 } },
    ]);
    const box = await sandbox({ KUBECONFIG: server.kubeconfigPath, LAUNCH_AGENT_NAME: 'it-agent' });
    const okSpec = join(box.dir, 'ok.yaml');
    await writeFile(
      okSpec,
      [
        'entity: acme',
        'project: demo',
        'resource: kubernetes',
        'docker: { docker_image: "busybox:1" }',
        'overrides: { entry_point: ["sh", "-c", "echo hello from the pod"] }',
        'resource_args: { kubernetes: { metadata: { labels: { team: "${project_name}" } } } }',
      ].join('\n'),
    );
    const badSpec = join(box.dir, 'bad.json');
    await writeFile(badSpec, JSON.stringify({ entity: 'acme', project: 'demo', resource: 'kubernetes', docker: { docker_image: 'registry.local/missing:1' } }));
    const ok = await cli(['enqueue', '-q', 'gpu', '--spec', okSpec], box.env);
    expect(ok.code, ok.stderr).toBe(0);
    const bad = await cli(['enqueue', '-q', 'gpu', '--spec', badSpec], box.env);
    expect(bad.code, bad.stderr).toBe(0);

    const run = await cli(['run', '-q', 'gpu', '-j', '2', '--exit-when-idle', '-v'], box.env);
    expect(run.code, run.stderr).toBe(0);
    // -v shows the job's output, streamed from the pod's log.
    expect(run.stderr).toContain('hello from the pod');

    const s = await status(box.env);
    expect(s.items.find((i) => i.id === ok.stdout.trim())).toMatchObject({ state: 'finished', runState: 'finished' });
    const failed = s.items.find((i) => i.id === bad.stdout.trim());
    expect(failed).toMatchObject({ state: 'failed', failure: { stage: 'run' } });
    expect(failed!.failure!.message).toMatch(/ImagePullError/);
    expect(failed!.failure!.message).toContain('registry.local/missing:1');

    const jobs = server.listObjects('/apis/batch/v1/namespaces/default/jobs') as { metadata: { labels: Record<string, string> } }[];
    const posts = server.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/jobs'));
    expect(posts).toHaveLength(2);
    // The Job of the good run may already be gone (ttlSecondsAfterFinished); if it is still there, it carries W&B's labels.
    for (const j of jobs) expect(j.metadata.labels).toMatchObject({ 'wandb.ai/monitor': 'true', 'wandb.ai/agent': 'it-agent' });
  });
});
