import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Io } from '../io.js';
import { UsageError } from '../usage.js';
import { checkCommand } from './check.js';
import { enqueueCommand } from './enqueue.js';

const KEY = 'a1b2c3d4e5'.repeat(4);
const KUBECONFIG = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: team}}]
current-context: x
`;

async function setup(extraEnv: Record<string, string> = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'launch-check-'));
  await writeFile(join(dir, 'kubeconfig'), KUBECONFIG);
  let stdout = '';
  let stderr = '';
  const io: Io = {
    stdout: { write: (c: string) => (stdout += c) },
    stderr: { write: (c: string) => (stderr += c) },
    env: { HOME: dir, LAUNCH_STATE_DIR: join(dir, 'state'), NO_COLOR: '1', WANDB_API_KEY: KEY, KUBECONFIG: join(dir, 'kubeconfig'), ...extraEnv },
    homedir: dir,
    cwd: dir,
    onSignal: () => () => {},
  };
  const spec = async (value: unknown) => {
    const path = join(dir, `spec-${Math.random().toString(36).slice(2)}.json`);
    await writeFile(path, JSON.stringify(value));
    return path;
  };
  return { dir, io, spec, out: () => stdout, err: () => stderr };
}

const k8sSpec = (kubernetes: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  entity: 'e',
  project: 'p',
  resource: 'kubernetes',
  docker: { docker_image: 'registry.local/train:1' },
  env: { MY_TOKEN: 'tok-secret-value-123', PLAIN: 'shown' },
  resource_args: { kubernetes },
  ...extra,
});

describe('launch-agent check (dry run)', () => {
  it('prints the Kubernetes manifest with macros filled and secrets masked, exit 0', async () => {
    const s = await setup();
    const file = await s.spec(
      k8sSpec(
        { metadata: { labels: { run: '${run_id}' } }, spec: { template: { spec: { containers: [{ image: '${image_uri}' }] } } } },
        { run_id: 'fixedrun1' },
      ),
    );
    const code = await checkCommand(['--queue', 'gpu', '--spec', file], s.io);
    expect(s.err()).toBe('');
    expect(code).toBe(0);
    const out = s.out();
    expect(out).toContain('namespace: team');
    expect(out).toContain('kind: batch/v1 Job');
    expect(out).toContain('run: fixedrun1');
    expect(out).toContain('image: registry.local/train:1');
    expect(out).toContain('name: WANDB_LAUNCH_QUEUE_NAME');
    expect(out).toContain('secretKeyRef');
    expect(out).toContain('value: shown');
    expect(out).not.toContain(KEY);
    expect(out).not.toContain('tok-secret-value-123');
    expect(out).toContain('[REDACTED]');
  });

  it('lists every manifest problem by path and exits 2; --json gives the same for machines', async () => {
    const s = await setup();
    const bad = k8sSpec({ replicas: 3, spec: { template: { spec: { containers: [{ resources: { volumeMounts: [] } }] } } } });
    const code = await checkCommand(['-q', 'gpu', '--spec', await s.spec(bad)], s.io);
    expect(code).toBe(2);
    expect(s.err()).toContain('launch: problem: resource_args.kubernetes.replicas: unknown field\n');
    expect(s.err()).toContain(
      'launch: problem: resource_args.kubernetes.spec.template.spec.containers[0].resources.volumeMounts: unknown field (did you mean spec.template.spec.containers[0].volumeMounts?)\n',
    );
    const j = await setup();
    expect(await checkCommand(['-q', 'gpu', '--json', '--spec', await j.spec(bad)], j.io)).toBe(2);
    const result = JSON.parse(j.out());
    expect(result.ok).toBe(false);
    expect(result.problems.map((p: { path: string }) => p.path)).toEqual([
      'resource_args.kubernetes.replicas',
      'resource_args.kubernetes.spec.template.spec.containers[0].resources.volumeMounts',
    ]);
    expect(result.request.env.WANDB_API_KEY).toBe('[REDACTED]');
    expect(j.out()).not.toContain(KEY);
    expect(j.out()).not.toContain('tok-secret-value-123');
  });

  it('refuses the nested `kubernetes:` wrapper and the safety-refused fields together', async () => {
    const s = await setup();
    const wrapped = k8sSpec({
      kubernetes: { kind: 'PyTorchJob', apiVersion: 'kubeflow.org/v1' },
      spec: { template: { spec: { hostNetwork: true, containers: [{}] } } },
    });
    expect(await checkCommand(['--spec', await s.spec(wrapped)], s.io)).toBe(2);
    expect(s.err()).toContain("resource_args.kubernetes.kubernetes: `kubernetes:` is W&B's queue-config wrapper");
    expect(s.err()).toContain('resource_args.kubernetes.spec.template.spec.hostNetwork');
  });

  it('a local process: the command line, working directory and environment (agent env inherited, key masked)', async () => {
    const s = await setup({ SOME_PASSWORD: 'hunter2-hunter2' });
    const code = await checkCommand(['--env', 'X=1', '--', 'python', 'train.py', '--lr', '0.1'], s.io);
    expect(code).toBe(0);
    expect(s.out()).toContain('resource: local-process (runner local-process)');
    expect(s.out()).toContain('command: ["python","train.py","--lr","0.1"]');
    expect(s.out()).toContain('  X=1\n');
    expect(s.out()).toContain('  WANDB_API_KEY=[REDACTED]\n');
    expect(s.out()).toContain('  SOME_PASSWORD=[REDACTED]\n');
    expect(s.out()).not.toContain('hunter2-hunter2');
  });

  it('no runner for the resource, no kube config, a bad spec: exit 2 naming each', async () => {
    const s = await setup();
    expect(await checkCommand(['--spec', await s.spec({ resource: 'sagemaker', docker: { docker_image: 'x:1' } })], s.io)).toBe(2);
    expect(s.err()).toContain('launch: problem: resource: no runner handles resource "sagemaker"');
    const n = await setup({ KUBECONFIG: '/nonexistent/kubeconfig' });
    expect(await checkCommand(['--spec', await n.spec(k8sSpec({}))], n.io)).toBe(2);
    expect(n.err()).toContain('resource "kubernetes" needs a kube config');
    const b = await setup();
    expect(await checkCommand(['--spec', await b.spec({ image: 'x', command: ['a'] })], b.io)).toBe(2);
    expect(b.err()).toMatch(/launch: problem: spec: [\s\S]*- image: unknown key "image"[\s\S]*- command: unknown key "command"/);
  });

  it('enqueue --dry-run prints the same plan and queues nothing', async () => {
    const s = await setup();
    const file = await s.spec(k8sSpec({}, { run_id: 'fixedrun1' }));
    expect(await enqueueCommand(['-q', 'gpu', '--dry-run', '--spec', file], s.io)).toBe(0);
    expect(s.out()).toContain('kind: batch/v1 Job');
    expect(s.out()).not.toMatch(/^[0-9a-f-]{20,}$/m);
    await expect(enqueueCommand(['--dry-run', '--wait', '--', 'true'], s.io)).rejects.toThrow(UsageError);
  });
});
