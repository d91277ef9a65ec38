import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryQueue, createScriptedRunner, waitFor, type MemoryQueue } from '@launch/testkit';
import type { Builder, BuildRequest } from '../contracts/builder.js';
import type { JobResolver, ResolveJobRequest, ResolvedJob } from '../contracts/job-resolver.js';
import { LaunchError } from '../errors.js';
import { createAgent } from './create-agent.js';
import type { Agent, AgentOptions } from './types.js';

const agents: Agent[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop('test over')));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

function start(options: Partial<AgentOptions> & Pick<AgentOptions, 'source' | 'runners'>): Agent {
  const agent = createAgent({ queues: ['q'], defaultResource: 'scripted', monitorIntervalMs: 20, env: {}, ...options });
  agents.push(agent);
  return agent;
}

type Failure = { failure: { stage: string; message: string } };
const ops = (q: MemoryQueue, op: string) => q.calls.filter((c) => c.op === op);
const firstFailure = (q: MemoryQueue) => waitFor(() => ops(q, 'fail')[0] as Failure | undefined, { what: 'the failure' });

/** A resolver answering from a table; the real one (W&B's artifact API) is @launch/wandb's, tested there. */
function resolverOf(answer: (request: ResolveJobRequest) => ResolvedJob | Error): JobResolver & { requests: ResolveJobRequest[] } {
  const requests: ResolveJobRequest[] = [];
  return {
    specificationVersion: 'v1',
    name: 'table',
    requests,
    async resolve(request) {
      requests.push(request);
      const a = answer(request);
      if (a instanceof Error) throw a;
      return a;
    },
  };
}

async function codeDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'launch-job-code-'));
  dirs.push(dir);
  await mkdir(join(dir, 'src'));
  await writeFile(join(dir, 'train.py'), 'print("hi")\n');
  await writeFile(join(dir, 'src', 'util.py'), '');
  await writeFile(join(dir, 'requirements.frozen.txt'), 'numpy==2.0.0\n');
  return dir;
}

const codeJob = (dir: string, extra: Partial<ResolvedJob> = {}): ResolvedJob =>
  ({
    kind: 'code',
    source: 'artifact',
    job: 'acme/vision/train:v3',
    version: 'v3',
    entryPoint: ['python', 'train.py'],
    codeDir: dir,
    sourceString: 'acme/vision/code-abc:v0',
    ...extra,
  }) as ResolvedJob;

describe('W&B jobs: resolved, then run as W&B runs them', () => {
  it('an image job runs its image with its entry point; overrides.entry_point wins; WANDB_ARTIFACTS names the job', async () => {
    const source = createMemoryQueue();
    source.enqueue('q', { entity: 'acme', project: 'vision', job: 'acme/vision/serve:latest' });
    source.enqueue('q', { entity: 'acme', project: 'vision', job: 'acme/vision/serve:latest', overrides: { entry_point: ['python', 'other.py'] } });
    const resolver = resolverOf(() => ({
      kind: 'image',
      job: 'acme/vision/serve:v7',
      version: 'v7',
      image: 'ghcr.io/acme/serve:7',
      entryPoint: ['python', 'serve.py'],
    }));
    const runner = createScriptedRunner({ needsImage: true });
    await start({ source, runners: [runner], jobResolver: resolver }).start();
    await waitFor(() => ops(source, 'finish').length === 2, { what: 'both jobs' });
    expect(runner.requests.map((r) => [r.image, r.entryPoint])).toEqual([
      ['ghcr.io/acme/serve:7', ['python', 'serve.py']],
      ['ghcr.io/acme/serve:7', ['python', 'other.py']],
    ]);
    expect(JSON.parse(runner.requests[0]!.env.WANDB_ARTIFACTS!)).toEqual({ _wandb_job: 'acme/vision/serve:latest' });
    expect(resolver.requests.map((r) => r.job)).toEqual(['acme/vision/serve:latest', 'acme/vision/serve:latest']);
  });

  it('a code job on a local runner runs in its own copy of the code, removed after the run; the fetched code is untouched', async () => {
    const dir = await codeDir();
    const source = createMemoryQueue();
    source.enqueue('q', { entity: 'acme', project: 'vision', job: 'acme/vision/train:latest', overrides: { working_dir: 'src' } });
    let seen: { cwd: string; files: string[] } | undefined;
    const runner = createScriptedRunner({
      script: (request) => {
        // The run writes beside its code, as jobs do.
        writeFileSync(join(request.workingDir!, 'out.txt'), 'written by the run');
        seen = { cwd: request.workingDir!, files: [readFileSync(join(request.workingDir!, '..', 'train.py'), 'utf8')] };
        return [
          { state: 'running', ms: 5 },
          { state: 'finished', exitCode: 0 },
        ];
      },
    });
    await start({ source, runners: [runner], jobResolver: resolverOf(() => codeJob(dir)) }).start();
    await waitFor(() => ops(source, 'finish').length === 1, { what: 'the job' });
    expect(runner.requests[0]!.entryPoint).toEqual(['python', 'train.py']);
    expect(seen!.cwd).not.toContain(dir);
    expect(seen!.cwd.endsWith('/src')).toBe(true);
    expect(seen!.files).toEqual(['print("hi")\n']);
    expect(existsSync(join(dir, 'src', 'out.txt'))).toBe(false);
    await waitFor(() => !existsSync(join(seen!.cwd, '..')), { what: 'the copy to be removed' });
  });

  it("a code job with a builder is built from the fetched code, under the resolved version, with the job's build settings", async () => {
    const dir = await codeDir();
    const source = createMemoryQueue();
    source.enqueue('q', { entity: 'acme', project: 'vision', job: 'acme/vision/train:latest' });
    const builds: BuildRequest[] = [];
    const builder: Builder = {
      specificationVersion: 'v1',
      name: 'docker',
      async build(request) {
        builds.push(request);
        return { imageUri: 'registry.local/train:abc', cached: false };
      },
    };
    const runner = createScriptedRunner({ needsImage: true });
    const resolved = codeJob(dir, { buildContext: 'src', dockerfile: 'Dockerfile.gpu', runtime: '3.11' } as Partial<ResolvedJob>);
    await start({ source, runners: [runner], builder, jobResolver: resolverOf(() => resolved) }).start();
    await waitFor(() => ops(source, 'finish').length === 1, { what: 'the job' });
    expect(builds).toHaveLength(1);
    expect(builds[0]).toMatchObject({
      contextDir: dir,
      spec: { job: 'acme/vision/train:v3' },
      job: { buildContext: 'src', dockerfile: 'Dockerfile.gpu', runtime: '3.11', entryPoint: ['python', 'train.py'] },
    });
    expect(runner.requests[0]).toMatchObject({ image: 'registry.local/train:abc', entryPoint: ['python', 'train.py'] });
    expect(runner.requests[0]!.code).toBeUndefined();
  });

  it('releases each resolved job to its resolver once its code is built or copied, and when preparing the run fails', async () => {
    const dir = await codeDir();
    const source = createMemoryQueue();
    source.enqueue('q', { entity: 'acme', project: 'vision', job: 'acme/vision/train:v3' });
    source.enqueue('q', { entity: 'acme', project: 'vision', job: 'acme/vision/train:v3' });
    const events: string[] = [];
    let builds = 0;
    const builder: Builder = {
      specificationVersion: 'v1',
      name: 'docker',
      async build() {
        builds += 1;
        events.push(`build ${builds}`);
        if (builds === 2) throw new LaunchError({ code: 'build.failed', stage: 'build', message: 'the second build fails' });
        return { imageUri: 'registry.local/train:abc', cached: false };
      },
    };
    const runner = createScriptedRunner({
      needsImage: true,
      script: () => {
        events.push('run');
        return [{ state: 'finished', exitCode: 0 }];
      },
    });
    const resolver = resolverOf(() => codeJob(dir));
    const released: ResolvedJob[] = [];
    const returned: ResolvedJob[] = [];
    const resolve = resolver.resolve.bind(resolver);
    resolver.resolve = async (request, ctx) => {
      const job = await resolve(request, ctx);
      returned.push(job);
      return job;
    };
    resolver.release = (job) => {
      released.push(job);
      events.push('release');
    };
    await start({ source, runners: [runner], builder, jobResolver: resolver, maxJobs: 1 }).start();
    await waitFor(() => ops(source, 'finish').length + ops(source, 'fail').length === 2, { what: 'both items' });
    expect(returned).toHaveLength(2);
    expect(released).toHaveLength(2);
    expect(released[0]).toBe(returned[0]);
    expect(released[1]).toBe(returned[1]);
    // Released after the build and before the run: the run needs the image, not the cached code.
    expect(events).toEqual(['build 1', 'release', 'run', 'build 2', 'release']);
  });

  it("a code job without a builder runs on W&B's default base image with its code mounted, installing its requirements first", async () => {
    const dir = await codeDir();
    const source = createMemoryQueue();
    source.enqueue('q', { entity: 'acme', project: 'vision', job: 'acme/vision/train:v3', overrides: { args: ['--lr', '0.1'], working_dir: 'src' } });
    source.enqueue('q', {
      entity: 'acme',
      project: 'vision',
      job: 'acme/vision/train:v3',
      resource_args: { scripted: { builder: { base_image: 'ghcr.io/acme/torch:2' } } },
    });
    let copied: string[] = [];
    const runner = createScriptedRunner({
      needsImage: true,
      mountsCode: true,
      script: (request, index) => {
        if (index === 0) copied = existsSync(request.code!.dir) ? ['train.py', 'src/util.py'].filter((f) => existsSync(join(request.code!.dir, f))) : [];
        return [{ state: 'finished', exitCode: 0 }];
      },
    });
    await start({ source, runners: [runner], jobResolver: resolverOf(() => codeJob(dir)) }).start();
    await waitFor(() => ops(source, 'finish').length === 2, { what: 'both jobs' });
    const [auto, configured] = runner.requests;
    expect(auto).toMatchObject({ image: 'python:3.12-slim', workingDir: '/mnt/wandb/src', code: { mountPath: '/mnt/wandb' }, args: ['--lr', '0.1'] });
    expect(auto!.code!.dir).not.toBe(dir);
    expect(copied).toEqual(['train.py', 'src/util.py']);
    expect(auto!.entryPoint.slice(0, 2)).toEqual(['sh', '-c']);
    expect(auto!.entryPoint[2]).toContain('pip install -r requirements.frozen.txt');
    expect(auto!.entryPoint.slice(3)).toEqual(['launch-entry', 'python', 'train.py']);
    // A base image the user chose is run as it is: no wrapper.
    expect(configured).toMatchObject({ image: 'ghcr.io/acme/torch:2', entryPoint: ['python', 'train.py'], workingDir: '/mnt/wandb' });
    expect(configured!.resourceArgs).toEqual({});
    const copies = runner.requests.map((r) => r.code!.dir);
    expect(new Set(copies).size).toBe(2);
    await waitFor(() => copies.every((d) => !existsSync(d)), { what: 'the copies to be removed' });
  });

  it('refuses what it cannot run, naming the job: no resolver, a resolver error, a runner that cannot mount code, an image job on a runner without images, an entry point outside the code', async () => {
    const dir = await codeDir();
    const cases: Array<[Partial<AgentOptions>, Record<string, unknown>, { stage: string; text: string }]> = [
      [
        {},
        { job: 'acme/vision/train:latest' },
        { stage: 'agent', text: 'the item names the W&B job acme/vision/train:latest, but this agent cannot fetch W&B jobs' },
      ],
      [
        {
          jobResolver: resolverOf(
            () =>
              new LaunchError({
                code: 'job.deleted',
                stage: 'agent',
                message: 'job acme/vision/train:v3: its code artifact acme/vision/code-abc:v0 was deleted',
              }),
          ),
        },
        { job: 'acme/vision/train:v3' },
        { stage: 'agent', text: 'its code artifact acme/vision/code-abc:v0 was deleted' },
      ],
      [
        { jobResolver: resolverOf(() => codeJob(dir)), runners: [createScriptedRunner({ needsImage: true })] },
        { job: 'acme/vision/train:v3' },
        { stage: 'build', text: 'the scripted runner cannot mount code into a base image' },
      ],
      [
        {
          jobResolver: resolverOf(() => ({ kind: 'image', job: 'acme/vision/serve:v7', version: 'v7', image: 'ghcr.io/acme/serve:7', entryPoint: ['serve'] })),
        },
        { job: 'acme/vision/serve:v7' },
        { stage: 'run', text: 'job acme/vision/serve:v7 is an image job (ghcr.io/acme/serve:7), and the scripted runner runs no images' },
      ],
      [
        { jobResolver: resolverOf(() => codeJob(dir, { entryPoint: ['python', '../../etc/x.py'] })) },
        { job: 'acme/vision/train:v3' },
        { stage: 'agent', text: "names ../../etc/x.py, which is outside the job's code" },
      ],
      [
        { jobResolver: resolverOf(() => codeJob(dir)) },
        { job: 'acme/vision/train:v3', overrides: { working_dir: '../..' } },
        { stage: 'agent', text: 'overrides.working_dir: expected a directory inside the job\'s code, found "../.."' },
      ],
    ];
    for (const [options, spec, expected] of cases) {
      const source = createMemoryQueue();
      source.enqueue('q', { entity: 'acme', project: 'vision', ...spec });
      const runner = createScriptedRunner({});
      await start({ source, runners: [runner], ...options }).start();
      const fail = await firstFailure(source);
      expect(fail.failure.stage, expected.text).toBe(expected.stage);
      expect(fail.failure.message).toContain(expected.text);
      expect(runner.requests).toHaveLength(0);
    }
  });

  it('an item with its own image and no resolver runs that image, as before jobs were resolved', async () => {
    const source = createMemoryQueue();
    source.enqueue('q', { entity: 'acme', project: 'vision', job: 'acme/vision/train:v3', docker: { docker_image: 'ghcr.io/acme/train:3' } });
    const runner = createScriptedRunner({ needsImage: true });
    await start({ source, runners: [runner] }).start();
    await waitFor(() => ops(source, 'finish').length === 1, { what: 'the job' });
    expect(runner.requests[0]!.image).toBe('ghcr.io/acme/train:3');
  });
});
