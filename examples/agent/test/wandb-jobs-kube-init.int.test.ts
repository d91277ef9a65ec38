import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { artifactIdString, createWandbTestServer, startKubeTestServer, type KubeletStep, type KubeTestServer, type WandbTestServer } from '@launch/testkit';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, CLI, cli, sandbox, status } from './helpers.js';

// W&B jobs through the binary on the Kubernetes test server with no builder and no code PVC: W&B's emptyDir mode.
// The runner gives the pod an emptyDir at /mnt/wandb and the init container `wandb-source-code-init`
// (LAUNCH_CODE_INIT_IMAGE) running `launch-agent fetch-code`. The test server has no container runtime, so this
// file plays one: each pod's emptyDir is a directory here, the init container's command runs for real with this
// build's binary standing for the image's `launch-agent` (its env as the pod spec gives it, the API key read from
// the secret its secretKeyRef names), then the main container's command runs with the host's sh in the emptyDir.
beforeAll(() => assertBuilt());

type Obj = Record<string, any>;
type InitExecutor = Extract<KubeletStep, { init: unknown }>['init'];
type PodExecutor = Extract<KubeletStep, { execute: unknown }>['execute'];

const INIT_IMAGE = 'ghcr.io/acme/launch-agent:test';
const servers: { close(): Promise<void> }[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function setup(extraEnv: Record<string, string> = {}) {
  const wandb = await createWandbTestServer({ queues: [{ entity: 'tester', name: 'local' }] });
  servers.push(wandb);
  const kube = await startKubeTestServer({ kubelet: { stepDelayMs: 5 } });
  servers.push(kube);
  // No WANDB_ENTITY: the embedded queue serves, with the W&B job resolver (a W&B key is at hand).
  const box = await sandbox({
    KUBECONFIG: kube.kubeconfigPath,
    LAUNCH_AGENT_NAME: 'jobs-agent',
    WANDB_API_KEY: wandb.apiKey,
    WANDB_BASE_URL: wandb.url,
    LAUNCH_CODE_INIT_IMAGE: INIT_IMAGE,
    ...extraEnv,
  });
  dirs.push(box.dir);
  return { wandb, kube, box };
}

interface Played {
  pod: string;
  container: string;
  argv: string[];
  exitCode: number;
  output: string;
  /** Where the container's /mnt/wandb was on this machine. */
  codeDir: string;
  cwd?: string;
  /** The pod's Job as the API server held it while the container ran. */
  job?: Obj;
}

/**
 * A stand-in container runtime for the test server's kubelet: emptyDir volumes are directories of `root` (one per pod
 * and volume), paths under a container's mounts map onto them, and `launch-agent` is this build's binary.
 */
function runtime(kube: KubeTestServer, root: string, played: Played[]) {
  const emptyDir = (pod: Obj, name: string) => join(root, `${pod.metadata.uid}-${name}`);
  const hostPath = (pod: Obj, container: Obj, path: string): string | undefined => {
    for (const m of (container.volumeMounts as Obj[] | undefined) ?? []) {
      const mountPath = String(m.mountPath).replace(/\/+$/, '');
      if (path !== mountPath && !path.startsWith(`${mountPath}/`)) continue;
      const volume = (pod.spec.volumes as Obj[] | undefined)?.find((v) => v.name === m.name);
      if (!volume?.emptyDir) return undefined;
      return join(emptyDir(pod, m.name), posix.relative(mountPath, path));
    }
    return undefined;
  };
  /** The container's env as the kubelet would give it: values, and secretKeyRefs read from the API server. */
  const envOf = (pod: Obj, container: Obj): Record<string, string> => {
    const env: Record<string, string> = {};
    for (const e of (container.env as Obj[] | undefined) ?? []) {
      if (typeof e.value === 'string') env[e.name] = e.value;
      const ref = e.valueFrom?.secretKeyRef;
      if (ref) {
        const secret = kube.getObject(`/api/v1/namespaces/${pod.metadata.namespace}/secrets/${ref.name}`) as Obj | undefined;
        const data = secret?.data?.[ref.key];
        if (typeof data !== 'string') throw new Error(`secret ${ref.name} has no key ${ref.key}`);
        env[e.name] = Buffer.from(data, 'base64').toString('utf8');
      }
    }
    return env;
  };
  const jobOf = (pod: Obj) => {
    const owner = (pod.metadata.ownerReferences as Obj[] | undefined)?.find((o) => o.kind === 'Job')?.name as string | undefined;
    return owner ? (kube.getObject(`/apis/batch/v1/namespaces/${pod.metadata.namespace}/jobs/${owner}`) as Obj | undefined) : undefined;
  };
  const exec = (argv: string[], cwd: string, env: Record<string, string>) =>
    new Promise<{ exitCode: number; output: string }>((resolve) => {
      execFile(argv[0]!, argv.slice(1), { cwd, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } }, (error, stdout, stderr) => {
        resolve({ exitCode: error ? (typeof error.code === 'number' ? error.code : 127) : 0, output: stdout + stderr });
      });
    });

  const init: InitExecutor = async (pod, container, io) => {
    for (const v of (pod.spec.volumes as Obj[] | undefined) ?? []) if (v.emptyDir) await mkdir(emptyDir(pod, v.name), { recursive: true });
    const argv = [...((container.command as string[] | undefined) ?? []), ...((container.args as string[] | undefined) ?? [])].map((arg) => {
      // --flag=/mnt/… and /mnt/… arguments name paths inside the container.
      const m = /^(--[a-z-]+=)?(\/.*)$/.exec(arg);
      const mapped = m ? hostPath(pod, container, m[2]!) : undefined;
      return mapped !== undefined ? `${m![1] ?? ''}${mapped}` : arg;
    });
    const home = await mkdtemp(join(root, 'home-'));
    const real = argv[0] === 'launch-agent' ? [process.execPath, CLI, ...argv.slice(1)] : argv;
    const result = await exec(real, home, { HOME: home, ...envOf(pod, container) });
    io.log(result.output);
    played.push({ pod: pod.metadata.name, container: container.name, argv, ...result, codeDir: hostPath(pod, container, '/mnt/wandb') ?? '', job: jobOf(pod) });
    return { exitCode: result.exitCode };
  };

  const main: PodExecutor = async (pod) => {
    const container = pod.spec.containers[0] as Obj;
    const codeDir = hostPath(pod, container, '/mnt/wandb');
    const cwd = hostPath(pod, container, String(container.workingDir ?? '/'));
    if (!codeDir || !cwd) return { exitCode: 3, message: 'no emptyDir at /mnt/wandb' };
    const argv = [...((container.command as string[] | undefined) ?? []), ...((container.args as string[] | undefined) ?? [])];
    const result = await exec(argv, cwd, {});
    played.push({ pod: pod.metadata.name, container: container.name, argv, ...result, codeDir, cwd, job: jobOf(pod) });
    return { exitCode: result.exitCode };
  };
  /** A container with no code mounted (an image job): its command runs in `root` with the pod's environment. */
  const image: PodExecutor = async (pod) => {
    const container = pod.spec.containers[0] as Obj;
    const argv = [...((container.command as string[] | undefined) ?? []), ...((container.args as string[] | undefined) ?? [])];
    const result = await exec(argv, root, envOf(pod, container));
    played.push({ pod: pod.metadata.name, container: container.name, argv, ...result, codeDir: '', job: jobOf(pod) });
    return { exitCode: result.exitCode };
  };
  return { init, main, image, emptyDir };
}

/** A code artifact (`run.sh` reading `lib/data.txt`) and its `artifact` job, `sh run.sh`. */
async function publishArtifactJob(wandb: WandbTestServer, out: string) {
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

const kubeSpec = (job: string, extra: Obj = {}) => ({
  job,
  entity: 'tester',
  project: 'proj',
  resource: 'kubernetes',
  // A base image named in resource_args: the job's entry point is the command (no pip wrapper to play).
  resource_args: { kubernetes: { builder: { base_image: 'busybox:1' } } },
  ...extra,
});

describe('launch-agent: W&B jobs on Kubernetes with the code init container (LAUNCH_CODE_INIT_IMAGE, no code PVC)', () => {
  it('runs an artifact job: the init container fetches the code into the emptyDir, the main container runs from it', async () => {
    const { wandb, kube, box } = await setup();
    const out = join(box.dir, 'out');
    await publishArtifactJob(wandb, out);
    const played: Played[] = [];
    const rt = runtime(kube, await mkdtemp(join(box.dir, 'node-')), played);
    kube.kubelet.script({ label: { 'wandb.ai/monitor': 'true' } }, [{ init: rt.init }, { running: true }, { execute: rt.main }]);

    const spec = join(box.dir, 'spec.json');
    await writeFile(spec, JSON.stringify(kubeSpec('tester/proj/job-source-proj-run.sh:latest')));
    const enq = await cli(['enqueue', '-q', 'gpu', '--spec', spec], box.env);
    expect(enq.code, enq.stderr).toBe(0);
    const run = await cli(['run', '-q', 'gpu', '--exit-when-idle'], box.env, 120_000);
    expect(run.code, run.stderr).toBe(0);

    const item = (await status(box.env)).items.find((i) => i.id === enq.stdout.trim());
    expect(item, `${run.stderr}\n${JSON.stringify(played, null, 1)}`).toMatchObject({ state: 'finished' });
    expect(played.map((p) => p.container)).toEqual(['wandb-source-code-init', 'launch0']);
    const [init, main] = played as [Played, Played];

    // The init container really fetched the job's code (at the version the agent resolved) into the emptyDir …
    expect(init.exitCode, init.output).toBe(0);
    expect(init.output).toContain("fetched the job's code");
    expect(init.argv.slice(0, 3)).toEqual(['launch-agent', 'fetch-code', '--job=tester/proj/job-source-proj-run.sh:v0']);
    expect((await readdir(init.codeDir)).sort()).toEqual(['lib', 'requirements.frozen.txt', 'run.sh']);
    expect(await readFile(join(init.codeDir, 'requirements.frozen.txt'), 'utf8')).toBe('numpy==1.26.4\n');
    // … and the main container ran from it, in /mnt/wandb.
    expect(main.exitCode, main.output).toBe(0);
    expect(main.codeDir).toBe(init.codeDir);
    expect(await readFile(out, 'utf8')).toBe('from the code artifact\n');
    expect((await readFile(`${out}.cwd`, 'utf8')).trim()).toBe(init.codeDir);

    // The Job as the API server held it: the emptyDir, the hardened init container with the key by reference, the mount.
    const pod = init.job!.spec.template.spec as Obj;
    expect(pod.volumes).toEqual([{ name: 'launch-code', emptyDir: {} }]);
    expect(pod.initContainers).toEqual([
      {
        name: 'wandb-source-code-init',
        image: INIT_IMAGE,
        command: ['launch-agent', 'fetch-code', '--job=tester/proj/job-source-proj-run.sh:v0', '--dest=/mnt/wandb'],
        env: [
          { name: 'WANDB_API_KEY', valueFrom: { secretKeyRef: { name: expect.stringMatching(/^wandb-api-key-/), key: 'password' } } },
          { name: 'WANDB_BASE_URL', value: wandb.url },
        ],
        volumeMounts: [{ name: 'launch-code', mountPath: '/mnt/wandb' }],
        securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } },
        // Defaults the API server fills in.
        imagePullPolicy: expect.any(String),
        resources: {},
        terminationMessagePath: '/dev/termination-log',
        terminationMessagePolicy: 'File',
      },
    ]);
    const container = pod.containers[0];
    expect(container).toMatchObject({ image: 'busybox:1', command: ['sh', 'run.sh'], workingDir: '/mnt/wandb' });
    expect(container.volumeMounts).toEqual([{ name: 'launch-code', mountPath: '/mnt/wandb' }]);
    expect(JSON.stringify(init.job)).not.toContain(wandb.apiKey);
    for (const text of [run.stdout, run.stderr, init.output]) expect(text).not.toContain(wandb.apiKey);
  }, 240_000);

  it('runs an image job as its image with its entry point: no init container, no code volume, run_config as WANDB_CONFIG', async () => {
    const { wandb, kube, box } = await setup();
    const out = join(box.dir, 'out');
    await wandb.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-trainer',
      job: { source_type: 'image', source: { image: 'registry.local/trainer:1', entrypoint: ['sh', '-c', `printf %s "$WANDB_CONFIG" > ${out}`] } },
      aliases: ['latest'],
    });
    const played: Played[] = [];
    const rt = runtime(kube, await mkdtemp(join(box.dir, 'node-')), played);
    kube.kubelet.script({ label: { 'wandb.ai/monitor': 'true' } }, [{ running: true }, { execute: rt.image }]);

    const spec = join(box.dir, 'spec.json');
    await writeFile(
      spec,
      JSON.stringify({
        job: 'tester/proj/job-trainer:latest',
        entity: 'tester',
        project: 'proj',
        resource: 'kubernetes',
        overrides: { run_config: { lr: 0.5 } },
      }),
    );
    const enq = await cli(['enqueue', '-q', 'gpu', '--spec', spec], box.env);
    expect(enq.code, enq.stderr).toBe(0);
    const run = await cli(['run', '-q', 'gpu', '--exit-when-idle'], box.env, 120_000);
    expect(run.code, run.stderr).toBe(0);
    const item = (await status(box.env)).items.find((i) => i.id === enq.stdout.trim());
    expect(item, `${run.stderr}\n${JSON.stringify(played, null, 1)}`).toMatchObject({ state: 'finished' });

    expect(played.map((p) => p.container)).toEqual(['launch0']);
    const pod = played[0]!.job!.spec.template.spec as Obj;
    expect(pod.initContainers).toBeUndefined();
    expect(pod.volumes).toBeUndefined();
    expect(pod.containers[0]).toMatchObject({ image: 'registry.local/trainer:1', command: ['sh', '-c', `printf %s "$WANDB_CONFIG" > ${out}`] });
    expect(pod.containers[0].volumeMounts).toBeUndefined();
    expect(JSON.parse(await readFile(out, 'utf8'))).toEqual({ lr: 0.5 });
  }, 240_000);

  it('runs a repo job: the init container fetches the commit from the git remote with diff.patch applied', async () => {
    const { wandb, kube, box } = await setup({ LAUNCH_ALLOW_FILE_GIT_REMOTES: '1' });
    const out = join(box.dir, 'out');
    const repo = makeRepo(box.dir, out);
    await wandb.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-repo-run.sh',
      // The job names the first commit; the branch has moved on since (data.txt says "commit two" there).
      job: { source_type: 'repo', source: { git: { remote: repo.remote, commit: repo.first }, entrypoint: ['sh', 'run.sh'] }, runtime: '3.12' },
      diffPatch: repo.patch,
      aliases: ['latest'],
    });
    const played: Played[] = [];
    const rt = runtime(kube, await mkdtemp(join(box.dir, 'node-')), played);
    kube.kubelet.script({ label: { 'wandb.ai/monitor': 'true' } }, [{ init: rt.init }, { running: true }, { execute: rt.main }]);

    const spec = join(box.dir, 'spec.json');
    await writeFile(spec, JSON.stringify(kubeSpec('tester/proj/job-repo-run.sh:latest')));
    const enq = await cli(['enqueue', '-q', 'gpu', '--spec', spec], box.env);
    expect(enq.code, enq.stderr).toBe(0);
    const run = await cli(['run', '-q', 'gpu', '--exit-when-idle'], box.env, 120_000);
    expect(run.code, run.stderr).toBe(0);

    const item = (await status(box.env)).items.find((i) => i.id === enq.stdout.trim());
    expect(item, `${run.stderr}\n${JSON.stringify(played, null, 1)}`).toMatchObject({ state: 'finished' });
    const [init, main] = played as [Played, Played];
    expect(init.container).toBe('wandb-source-code-init');
    expect(init.exitCode, init.output).toBe(0);
    // The agent let the init container fetch file:// remotes as it does itself.
    expect(init.job!.spec.template.spec.initContainers[0].env).toContainEqual({ name: 'LAUNCH_ALLOW_FILE_GIT_REMOTES', value: '1' });
    expect(main.exitCode, main.output).toBe(0);
    // The first commit's files with the patch on top, and HEAD at that commit, read in the emptyDir.
    expect(await readFile(out, 'utf8')).toBe('commit one\npatched\n');
    expect((await readFile(`${out}.head`, 'utf8')).trim()).toBe(repo.first);
    expect((await readFile(`${out}.cwd`, 'utf8')).trim()).toBe(init.codeDir);
  }, 240_000);

  it('fails the item when the init container cannot fetch the code, and the Job never runs its main container', async () => {
    const { wandb, kube, box } = await setup();
    const out = join(box.dir, 'out');
    await publishArtifactJob(wandb, out);
    const played: Played[] = [];
    const rt = runtime(kube, await mkdtemp(join(box.dir, 'node-')), played);
    // The init container's key is refused by the W&B server (a pod whose secret was replaced, say).
    const badKey: InitExecutor = (pod, container, io) =>
      rt.init(
        pod,
        { ...container, env: [...container.env.filter((e: Obj) => e.name !== 'WANDB_API_KEY'), { name: 'WANDB_API_KEY', value: 'wrong-key-0123456789' }] },
        io,
      );
    kube.kubelet.script({ label: { 'wandb.ai/monitor': 'true' } }, [{ init: badKey }, { running: true }, { execute: rt.main }]);

    const spec = join(box.dir, 'spec.json');
    await writeFile(spec, JSON.stringify(kubeSpec('tester/proj/job-source-proj-run.sh:latest')));
    const enq = await cli(['enqueue', '-q', 'gpu', '--spec', spec], box.env);
    expect(enq.code, enq.stderr).toBe(0);
    const run = await cli(['run', '-q', 'gpu', '--exit-when-idle'], box.env, 120_000);
    expect(run.code, run.stderr).toBe(0);

    const item = (await status(box.env)).items.find((i) => i.id === enq.stdout.trim());
    expect(item, run.stderr).toMatchObject({ state: 'failed', failure: { stage: 'run' } });
    expect(played.map((p) => p.container)).toEqual(['wandb-source-code-init']);
    expect(played[0]!.exitCode).not.toBe(0);
    expect(played[0]!.output).toContain('tester/proj/job-source-proj-run.sh');
    // The failure names the init container and carries the end of its log (the tail the runner read from it).
    const message = item!.failure!.message;
    expect(message).toContain('init container wandb-source-code-init of pod launch-tester-proj-');
    expect(message).toContain("the job's code could not be fetched");
    expect(message).toContain('rejected the API key from WANDB_API_KEY (HTTP 401');
    expect(JSON.stringify(item)).not.toContain(wandb.apiKey);
  }, 240_000);
});

describe('launch-agent fetch-code', () => {
  it('refuses bad usage, a --dest that is not empty and an image job, naming them; copies nothing', async () => {
    const wandb = await createWandbTestServer({ queues: [{ entity: 'tester', name: 'local' }] });
    servers.push(wandb);
    await wandb.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-trainer',
      job: { source_type: 'image', source: { image: 'registry.local/trainer:1', entrypoint: ['python', 'train.py'] } },
      aliases: ['latest'],
    });
    const out = join(tmpdir(), 'unused');
    await publishArtifactJob(wandb, out);
    const box = await sandbox({ WANDB_API_KEY: wandb.apiKey, WANDB_BASE_URL: wandb.url });
    dirs.push(box.dir);

    const usage = await cli(['fetch-code', '--dest', join(box.dir, 'x')], box.env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('--job is required');
    const relative = await cli(['fetch-code', '--job', 'tester/proj/job-source-proj-run.sh:latest', '--dest', 'code'], box.env);
    expect(relative.code).toBe(2);
    expect(relative.stderr).toContain('--dest: expected an absolute directory, found "code"');

    const full = join(box.dir, 'full');
    await mkdir(full);
    await writeFile(join(full, 'keep.txt'), 'mine\n');
    const notEmpty = await cli(['fetch-code', '--job', 'tester/proj/job-source-proj-run.sh:latest', '--dest', full], box.env);
    expect(notEmpty.code).toBe(1);
    expect(notEmpty.stderr).toContain(`--dest ${full} is not empty`);
    expect(await readdir(full)).toEqual(['keep.txt']);

    const image = await cli(['fetch-code', '--job=tester/proj/job-trainer:latest', '--dest', join(box.dir, 'img')], box.env);
    expect(image.code).toBe(1);
    expect(image.stderr).toContain('job tester/proj/job-trainer:v0 is an image job (registry.local/trainer:1): it has no code to fetch');

    // And the happy path, outside a pod: an alias resolves, the code lands in a new directory.
    const dest = join(box.dir, 'new', 'code');
    const ok = await cli(['fetch-code', '--job', 'tester/proj/job-source-proj-run.sh:latest', '--dest', dest], box.env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(await readFile(join(dest, 'lib', 'data.txt'), 'utf8')).toBe('from the code artifact\n');
    for (const r of [usage, relative, notEmpty, image, ok]) expect(r.stdout + r.stderr).not.toContain(wandb.apiKey);
  }, 120_000);
});

/**
 * A git repository served as a bare `file://` remote: a first commit with `run.sh` (which records where it runs,
 * what it reads and which commit it is) and `data.txt`, a second commit changing `data.txt`, and a `diff.patch`
 * against the first commit changing `note.txt`.
 */
function makeRepo(dir: string, out: string): { remote: string; first: string; patch: string } {
  const work = join(dir, 'repo-work');
  const bare = join(dir, 'repo.git');
  mkdirSync(work);
  const gitEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, GIT_CONFIG_NOSYSTEM: '1' };
  const git = (cwd: string, ...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=Tester', '-c', 'user.email=tester@example.com', '-c', 'init.defaultBranch=main', ...args], {
      cwd,
      env: gitEnv,
      encoding: 'utf8',
    }).trim();
  git(work, 'init', '-q');
  writeFileSync(join(work, 'run.sh'), [`pwd > ${out}.cwd`, `git rev-parse HEAD > ${out}.head`, `cat data.txt note.txt > ${out}`, ''].join('\n'));
  writeFileSync(join(work, 'data.txt'), 'commit one\n');
  writeFileSync(join(work, 'note.txt'), 'unpatched\n');
  git(work, 'add', '.');
  git(work, 'commit', '-q', '-m', 'one');
  const first = git(work, 'rev-parse', 'HEAD');
  writeFileSync(join(work, 'note.txt'), 'patched\n');
  const patch = git(work, 'diff') + '\n';
  git(work, 'checkout', '-q', '--', 'note.txt');
  writeFileSync(join(work, 'data.txt'), 'commit two\n');
  git(work, 'commit', '-q', '-am', 'two');
  git(dir, 'clone', '-q', '--bare', work, bare);
  return { remote: `file://${bare}`, first, patch };
}
