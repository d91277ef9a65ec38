import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { LaunchError } from '@launch/core';
import { startKubeTestServer, type KubeTestServer, type PodExecutor } from '@launch/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { CODE_ANNOTATION } from './code-mount.js';
import { LABEL } from './labels.js';
import { createKubernetesRunner, type KubernetesRunner } from './runner.js';
import { kubeRequest, until } from './test-fixtures.js';

type Obj = Record<string, any>;

const ctx = { logger: { debug() {}, info() {}, warn() {}, error() {} } };
const CLAIM = 'launch-code';
let server: KubeTestServer | undefined;
const runners: KubernetesRunner[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const r of runners.splice(0)) await r.close();
  await server?.close();
  server = undefined;
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tmp(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

async function setup(withPvc = true) {
  server = await startKubeTestServer({ kubelet: { stepDelayMs: 5 }, timeScale: 0.01 });
  const pvcRoot = await tmp('launch-code-pvc-');
  const runner = createKubernetesRunner({
    kubeconfigPath: server.kubeconfigPath,
    watchBackoffMs: { initial: 10, max: 100 },
    agentName: 'code-agent',
    ...(withPvc ? { codePvc: { name: CLAIM, mountPath: pvcRoot } } : {}),
  });
  runners.push(runner);
  return { server, runner, pvcRoot };
}

/** The agent's private copy of a job's code, as core hands it over. */
async function jobCode(): Promise<string> {
  const code = await tmp('launch-code-');
  await mkdir(join(code, 'src'));
  await writeFile(join(code, 'src', 'train.py'), 'print("trained")\n');
  await writeFile(join(code, 'run.sh'), '#!/bin/sh\n');
  await chmod(join(code, 'run.sh'), 0o755);
  return code;
}

let n = 0;
const ids = () => {
  n++;
  return { runId: `code${n}x${Date.now().toString(36)}`, itemId: `code-item-${n}-${Math.random().toString(36).slice(2)}=` };
};

/**
 * The pod's work, done for real: it reads its code where its first container mounts it, through the claim (the PVC
 * stands as `pvcRoot`, as it is mounted on the agent) and the mount's subPath, and logs what it found.
 */
function readsItsCode(pvcRoot: string, gate?: Promise<void>): PodExecutor {
  return async (pod, io) => {
    await gate;
    const container = pod.spec.containers[0];
    const mount = (container.volumeMounts as Obj[]).find((m) => m.mountPath === '/mnt/wandb');
    const volume = (pod.spec.volumes as Obj[]).find((v) => v.name === mount?.name);
    if (!mount || volume?.persistentVolumeClaim?.claimName !== CLAIM) return { exitCode: 3, message: 'no code mount' };
    const inPod = posix.relative('/mnt/wandb', `${container.workingDir}/train.py`);
    const text = await readFile(join(pvcRoot, mount.subPath, inPod), 'utf8').catch(() => 'missing');
    io.log(`code: ${text}`);
    return { exitCode: text === 'missing' ? 4 : 0 };
  };
}

const jobs = () => server!.listObjects('/apis/batch/v1/namespaces/default/jobs') as Obj[];

describe("kubernetes runner: a W&B job's code from the code PVC", () => {
  it('copies the code onto the PVC, mounts its subPath at /mnt/wandb with the working directory, and removes it after the run', async () => {
    const { runner, server, pvcRoot } = await setup();
    server.kubelet.script({ label: { [LABEL.monitor]: 'true' } }, [{ running: true }, { execute: readsItsCode(pvcRoot) }]);
    expect(runner.capabilities.mountsCode).toBe(true);
    const code = await jobCode();
    const req = kubeRequest({ ...ids(), entryPoint: ['python', 'train.py'], workingDir: '/mnt/wandb/src', code: { dir: code, mountPath: '/mnt/wandb' } });
    const run = await runner.run(req, ctx);

    // The Job as the API server holds it.
    const job = server.getObject(`/apis/batch/v1/namespaces/default/jobs/${run.id}`) as Obj;
    const pod = job.spec.template.spec;
    expect(pod.volumes).toEqual([{ name: 'launch-code', persistentVolumeClaim: { claimName: CLAIM } }]);
    const mount = pod.containers[0].volumeMounts[0];
    expect(mount).toMatchObject({ name: 'launch-code', mountPath: '/mnt/wandb' });
    expect(mount.subPath).toMatch(new RegExp(`^${run.id}-[0-9a-f]{10}$`));
    expect(pod.containers[0].workingDir).toBe('/mnt/wandb/src');
    expect(job.metadata.annotations[CODE_ANNOTATION]).toBe(`${CLAIM}/${mount.subPath}`);

    // The copy on the PVC: every file, content and mode.
    const onPvc = join(pvcRoot, mount.subPath);
    expect(await readFile(join(onPvc, 'src', 'train.py'), 'utf8')).toBe('print("trained")\n');
    expect((await stat(join(onPvc, 'run.sh'))).mode & 0o777).toBe(0o755);

    const status = await run.wait();
    expect(status.state).toBe('finished');
    // The pod read its code while it ran …
    expect(await run.logs()).toContain('code: print("trained")');
    // … and it is gone once the run is over; the agent's own copy is core's to remove.
    expect(await readdir(pvcRoot)).toEqual([]);
    expect(await readFile(join(code, 'src', 'train.py'), 'utf8')).toBe('print("trained")\n');
  });

  it('without a code PVC, refuses a run with code before touching the cluster, naming the settings', async () => {
    const { runner } = await setup(false);
    expect(runner.capabilities.mountsCode).toBe(true);
    const req = kubeRequest({ ...ids(), code: { dir: await jobCode(), mountPath: '/mnt/wandb' }, workingDir: '/mnt/wandb' });
    const error = (await runner.run(req, ctx).catch((e: unknown) => e)) as LaunchError;
    expect(LaunchError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code: 'run.cannot_mount_code', stage: 'build', category: 'BuildFailed' });
    expect(error.hint).toContain('WANDB_LAUNCH_CODE_PVC_NAME');
    expect(error.hint).toContain('WANDB_LAUNCH_CODE_PVC_MOUNT_PATH');
    expect(error.hint).toContain('builder.type');
    expect(jobs()).toEqual([]);
    expect(runner.plan(req).issues.map((i) => i.path)).toContain('code');
  });

  it('refuses a user volume named like the code volume, copying nothing', async () => {
    const { runner, pvcRoot } = await setup();
    const resourceArgs = { spec: { template: { spec: { containers: [{ name: 'main' }], volumes: [{ name: 'launch-code', emptyDir: {} }] } } } };
    const req = kubeRequest({ ...ids(), resourceArgs, code: { dir: await jobCode(), mountPath: '/mnt/wandb' } });
    const error = (await runner.run(req, ctx).catch((e: unknown) => e)) as LaunchError;
    expect(error).toMatchObject({ code: 'run.code_volume_clash', category: 'InvalidSpec' });
    expect(error.message).toContain('spec.template.spec.volumes[0]');
    expect(error.message).toContain('"launch-code"');
    expect(jobs()).toEqual([]);
    expect(await readdir(pvcRoot)).toEqual([]);
  });

  it('a missing mount path fails the run with the path named and leaves nothing in the cluster', async () => {
    const { runner, pvcRoot } = await setup();
    await rm(pvcRoot, { recursive: true });
    const req = kubeRequest({ ...ids(), code: { dir: await jobCode(), mountPath: '/mnt/wandb' } });
    const error = (await runner.run(req, ctx).catch((e: unknown) => e)) as LaunchError;
    expect(error.code).toBe('run.code_copy_failed');
    expect(error.message).toContain(pvcRoot);
    expect(jobs()).toEqual([]);
    expect((server!.listObjects('/api/v1/namespaces/default/secrets') as Obj[]).filter((s) => s.metadata.name.startsWith('wandb-api-key-'))).toEqual([]);
  });

  it('a restarted agent that adopts the run removes its code when it ends', async () => {
    const { runner, server, pvcRoot } = await setup();
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    server.kubelet.script({ label: { [LABEL.monitor]: 'true' } }, [{ running: true }, { execute: readsItsCode(pvcRoot, gate) }]);
    const run = await runner.run(kubeRequest({ ...ids(), workingDir: '/mnt/wandb/src', code: { dir: await jobCode(), mountPath: '/mnt/wandb' } }), ctx);
    // The agent goes away while the pod runs.
    await runner.close();
    expect(await readdir(pvcRoot)).toHaveLength(1);

    const restarted = createKubernetesRunner({ kubeconfigPath: server.kubeconfigPath, agentName: 'code-agent', codePvc: { name: CLAIM, mountPath: pvcRoot } });
    runners.push(restarted);
    const [adopted] = await restarted.adopt('code-agent', ctx);
    expect(adopted?.id).toBe(run.id);
    open();
    expect((await adopted!.wait()).state).toBe('finished');
    expect(await adopted!.logs()).toContain('code: print("trained")');
    expect(await readdir(pvcRoot)).toEqual([]);
  });

  it('keeps the code of a preempted run until its terminating pod is gone', async () => {
    const { runner, server, pvcRoot } = await setup();
    server.kubelet.script({ label: { [LABEL.monitor]: 'true' } }, [{ running: true }, { wait: 600_000 }]);
    const run = await runner.run(kubeRequest({ ...ids(), code: { dir: await jobCode(), mountPath: '/mnt/wandb' } }), ctx);
    await until(run, (s) => s.state === 'running', 20_000);
    const pod = (server.listObjects('/api/v1/namespaces/default/pods') as Obj[]).find(
      (p) => p.metadata.labels?.['job-name'] === run.id || p.metadata.ownerReferences?.[0]?.name === run.id,
    )!;
    // The kubelet is frozen: the evicted pod stays terminating (phase Running) while the run is already over.
    server.kubelet.pause();
    const kc = new KubeConfig();
    kc.loadFromString(server.kubeconfigYaml);
    await kc
      .makeApiClient(CoreV1Api)
      .createNamespacedPodEviction({ name: pod.metadata.name, namespace: 'default', body: { metadata: { name: pod.metadata.name, namespace: 'default' } } });
    expect((await run.wait()).state).toBe('preempted');
    const terminating = server.getObject(`/api/v1/namespaces/default/pods/${pod.metadata.name}`) as Obj;
    expect(terminating.metadata.deletionTimestamp).toBeDefined();
    expect(terminating.status.phase).toBe('Running');
    expect(await readdir(pvcRoot)).toHaveLength(1);
    // The pod ends: the code goes.
    server.kubelet.resume();
    await eventually(async () => (await readdir(pvcRoot)).length === 0, 30_000);
  });
});

async function eventually(fn: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
