import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile, chmod, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import {
  artifactIdString,
  createWandbTestServer,
  startKubeTestServer,
  waitFor,
  type KubeTestServer,
  type PodExecutor,
  type WandbTestServer,
} from '@launch/testkit';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cli, sandbox, start, status, type Running } from './helpers.js';

// W&B `artifact` jobs through the binary on the Kubernetes test server, with no builder: W&B's NoOp builder path,
// a base image with the job's code on the code PVC (WANDB_LAUNCH_CODE_PVC_NAME / _MOUNT_PATH), mounted at
// /mnt/wandb by subPath. The test server has no container runtime: its kubelet "runs" a pod with an executor
// step (below) that plays the container on this machine — it finds the code through the pod's claim and
// subPath in the directory standing for the PVC, and runs the container's command there with the host's sh.
beforeAll(() => assertBuilt());

type Obj = Record<string, any>;
const CLAIM = 'launch-code';
const running: Running[] = [];
const servers: { close(): Promise<void> }[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const r of running.splice(0)) {
    r.child.kill('SIGKILL');
    await r.exited;
  }
  for (const s of servers.splice(0)) await s.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tmp(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

async function setup(codePvc: boolean) {
  const wandb = await createWandbTestServer({ queues: [{ entity: 'tester', name: 'local' }] });
  servers.push(wandb);
  const kube = await startKubeTestServer({ kubelet: { stepDelayMs: 5 } });
  servers.push(kube);
  const pvcRoot = await tmp('launch-code-pvc-');
  // No WANDB_ENTITY: the embedded queue serves, with the W&B job resolver (a W&B key is at hand).
  const box = await sandbox({
    KUBECONFIG: kube.kubeconfigPath,
    LAUNCH_AGENT_NAME: 'jobs-agent',
    WANDB_API_KEY: wandb.apiKey,
    WANDB_BASE_URL: wandb.url,
    ...(codePvc ? { WANDB_LAUNCH_CODE_PVC_NAME: CLAIM, WANDB_LAUNCH_CODE_PVC_MOUNT_PATH: pvcRoot } : {}),
  });
  dirs.push(box.dir);
  return { wandb, kube, pvcRoot, box };
}

/** A code artifact (`run.sh` reading `lib/data.txt`) and its `artifact` job, `sh run.sh`. */
async function publishJob(wandb: WandbTestServer, out: string) {
  const code = await wandb.publishCode({
    entity: 'tester',
    project: 'proj',
    name: 'source-proj-run.sh',
    files: { 'run.sh': `cat lib/data.txt >> ${out}\npwd >> ${out}.cwd\n`, 'lib/data.txt': 'from the code artifact\n' },
  });
  await wandb.publishJob({
    entity: 'tester',
    project: 'proj',
    name: 'job-source-proj-run.sh',
    job: { source_type: 'artifact', source: { artifact: artifactIdString(code), entrypoint: ['sh', 'run.sh'] }, runtime: '3.12' },
    requirements: 'numpy==1.26.4\n',
    aliases: ['latest'],
  });
}

interface Executed {
  job: Obj | undefined;
  cwd: string;
  exitCode: number;
  output: string;
}

/**
 * Plays a pod's first container: its code comes from the claim `CLAIM` (the directory `pvcRoot`, where the agent
 * has the PVC mounted) at the mount's subPath, and its command runs with the host's `sh` in the working directory
 * the container names under /mnt/wandb. `pip` is a stub recording its arguments (no network, no Python here).
 * Records the pod's Job as the API server held it while the pod ran.
 */
function runsFromItsCode(kube: KubeTestServer, pvcRoot: string, stubBin: string, executed: Executed[]): PodExecutor {
  return async (pod) => {
    const container = pod.spec.containers[0] as Obj;
    const owner = (pod.metadata.ownerReferences as Obj[] | undefined)?.find((o) => o.kind === 'Job')?.name as string | undefined;
    const job = owner ? (kube.getObject(`/apis/batch/v1/namespaces/default/jobs/${owner}`) as Obj | undefined) : undefined;
    const mount = (container.volumeMounts as Obj[] | undefined)?.find((m) => m.mountPath === '/mnt/wandb');
    const volume = (pod.spec.volumes as Obj[] | undefined)?.find((v) => v.name === mount?.name);
    if (!mount || volume?.persistentVolumeClaim?.claimName !== CLAIM) return { exitCode: 3, message: 'no code mount' };
    const cwd = join(pvcRoot, mount.subPath as string, posix.relative('/mnt/wandb', container.workingDir as string));
    const argv = [...((container.command as string[] | undefined) ?? []), ...((container.args as string[] | undefined) ?? [])];
    const result = await new Promise<{ exitCode: number; output: string }>((resolve) => {
      execFile(argv[0]!, argv.slice(1), { cwd, env: { PATH: `${stubBin}:${process.env.PATH ?? '/usr/bin:/bin'}` } }, (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 127) : 0;
        resolve({ exitCode: code, output: stdout + stderr });
      });
    });
    executed.push({ job, cwd, ...result });
    return { exitCode: result.exitCode };
  };
}

describe('launch-agent: W&B artifact jobs on Kubernetes without a builder', () => {
  it('runs them on a base image with the code on the code PVC, mounted at /mnt/wandb by subPath, and removes the code after', async () => {
    const { wandb, kube, pvcRoot, box } = await setup(true);
    const out = join(box.dir, 'out');
    await publishJob(wandb, out);
    const stubBin = join(box.dir, 'bin');
    await mkdir(stubBin);
    await writeFile(join(stubBin, 'pip'), `#!/bin/sh\necho "$@" >> ${out}.pip\n`);
    await chmod(join(stubBin, 'pip'), 0o755);
    const executed: Executed[] = [];
    kube.kubelet.script({ label: { 'wandb.ai/monitor': 'true' } }, [{ running: true }, { execute: runsFromItsCode(kube, pvcRoot, stubBin, executed) }]);

    const job = 'tester/proj/job-source-proj-run.sh:latest';
    // A base image named in resource_args: the job's entry point as the command.
    const based = join(box.dir, 'based.json');
    await writeFile(
      based,
      JSON.stringify({
        job,
        entity: 'tester',
        project: 'proj',
        resource: 'kubernetes',
        resource_args: { kubernetes: { builder: { base_image: 'busybox:1' } } },
      }),
    );
    // None: W&B's default python image, which installs the job's requirements first.
    const defaulted = join(box.dir, 'default.json');
    await writeFile(defaulted, JSON.stringify({ job, entity: 'tester', project: 'proj', resource: 'kubernetes' }));
    const first = await cli(['enqueue', '-q', 'gpu', '--spec', based], box.env);
    expect(first.code, first.stderr).toBe(0);
    const run1 = await cli(['run', '-q', 'gpu', '--exit-when-idle'], box.env, 120_000);
    expect(run1.code, run1.stderr).toBe(0);
    const second = await cli(['enqueue', '-q', 'gpu', '--spec', defaulted], box.env);
    expect(second.code, second.stderr).toBe(0);
    const run2 = await cli(['run', '-q', 'gpu', '--exit-when-idle'], box.env, 120_000);
    expect(run2.code, run2.stderr).toBe(0);

    const items = (await status(box.env)).items;
    expect(
      items.find((i) => i.id === first.stdout.trim()),
      run1.stderr,
    ).toMatchObject({ state: 'finished' });
    expect(
      items.find((i) => i.id === second.stdout.trim()),
      run2.stderr,
    ).toMatchObject({ state: 'finished' });
    expect(executed).toHaveLength(2);
    for (const e of executed) expect(e.exitCode, e.output).toBe(0);
    // Each run read its code through the claim and subPath, from /mnt/wandb.
    expect(await readFile(out, 'utf8')).toBe('from the code artifact\nfrom the code artifact\n');

    // The Jobs as the API server held them while the pods ran.
    const [withBase, withDefault] = executed.map((e) => e.job!.spec.template.spec as Obj);
    for (const [i, pod] of [withBase!, withDefault!].entries()) {
      expect(pod.volumes).toEqual([{ name: 'launch-code', persistentVolumeClaim: { claimName: CLAIM } }]);
      const container = pod.containers[0];
      expect(container.volumeMounts).toEqual([{ name: 'launch-code', mountPath: '/mnt/wandb', subPath: expect.stringMatching(/^[a-z0-9-]+$/) }]);
      expect(container.workingDir).toBe('/mnt/wandb');
      expect(executed[i]!.cwd).toBe(join(pvcRoot, container.volumeMounts[0].subPath));
    }
    expect(withBase!.containers[0]).toMatchObject({ image: 'busybox:1', command: ['sh', 'run.sh'] });
    expect(withDefault!.containers[0].image).toBe('python:3.12-slim');
    expect(withDefault!.containers[0].command.slice(0, 2)).toEqual(['sh', '-c']);
    expect(withDefault!.containers[0].command.slice(-2)).toEqual(['sh', 'run.sh']);
    // The default image's wrapper installed the job's requirements (the stub pip) before running the entry point.
    expect(await readFile(`${out}.pip`, 'utf8')).toBe('install -r requirements.frozen.txt\n');

    // The code is gone from the PVC once the runs are over.
    expect(await readdir(pvcRoot)).toEqual([]);
  }, 240_000);

  it('without WANDB_LAUNCH_CODE_PVC_NAME fails the item at stage build with the hint, creates no Job, and keeps serving', async () => {
    const { wandb, kube, box } = await setup(false);
    const out = join(box.dir, 'out');
    await publishJob(wandb, out);
    const agent = start(['run', '-q', 'gpu'], box.env);
    running.push(agent);
    const spec = join(box.dir, 'spec.json');
    await writeFile(spec, JSON.stringify({ job: 'tester/proj/job-source-proj-run.sh:latest', entity: 'tester', project: 'proj', resource: 'kubernetes' }));
    const enq = await cli(['enqueue', '-q', 'gpu', '--spec', spec], box.env);
    expect(enq.code, enq.stderr).toBe(0);
    const failed = await waitFor(
      async () => {
        if (agent.child.exitCode !== null) throw new Error(`the agent exited:\n${agent.stderr()}`);
        return (await status(box.env)).items.find((i) => i.id === enq.stdout.trim() && i.state === 'failed');
      },
      { timeoutMs: 90_000, intervalMs: 300, what: 'the item to fail' },
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${agent.stderr()}`);
    });
    expect(failed.failure?.stage).toBe('build');
    expect(failed.failure?.message).toContain('the kubernetes runner has no code PVC configured');
    expect(failed.failure?.message).toContain('(hint: set WANDB_LAUNCH_CODE_PVC_NAME and WANDB_LAUNCH_CODE_PVC_MOUNT_PATH');
    expect(failed.failure?.message).toContain('or LAUNCH_CODE_INIT_IMAGE (an image with the launch-agent binary');
    expect(kube.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/jobs'))).toEqual([]);

    // Still serving: an item with its own image runs after it.
    const ok = join(box.dir, 'ok.json');
    await writeFile(ok, JSON.stringify({ entity: 'tester', project: 'proj', resource: 'kubernetes', docker: { docker_image: 'busybox:1' } }));
    const next = await cli(['enqueue', '-q', 'gpu', '--spec', ok], box.env);
    expect(next.code, next.stderr).toBe(0);
    await waitFor(async () => (await status(box.env)).items.find((i) => i.id === next.stdout.trim() && i.state === 'finished'), {
      timeoutMs: 90_000,
      intervalMs: 300,
      what: 'the next item to finish',
    }).catch((e: Error) => {
      throw new Error(`${e.message}\n${agent.stderr()}`);
    });
    expect(agent.child.exitCode).toBeNull();
    agent.child.kill('SIGTERM');
    const done = await agent.exited;
    expect(done.code, done.stderr).toBe(0);
    for (const text of [done.stdout, done.stderr]) expect(text).not.toContain(wandb.apiKey);
  }, 240_000);
});
