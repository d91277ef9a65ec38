import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LaunchError, LaunchValidationError, type LaunchSpec, type ResolvedCodeJob } from '@launch/core';
import { artifactIdString, createWandbTestServer, manifestDigest, type WandbTestServer } from '@launch/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { captureLogger, errorText } from '../test-support/capture-logger.js';
import { createWandbJobResolver, type WandbJobResolver } from './resolver.js';

const GIT = '/usr/bin/git';
const fast = { retry: { baseDelayMs: 5, maxDelayMs: 20 }, env: {} };

let root: string;
const servers: WandbTestServer[] = [];
const resolvers: WandbJobResolver[] = [];
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'wandb-jobs-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));
afterEach(async () => {
  for (const r of resolvers.splice(0)) await r.close();
  for (const s of servers.splice(0)) await s.close();
});

function git(cwd: string, ...args: string[]): string {
  return execFileSync(
    GIT,
    ['-c', 'user.name=Test', '-c', 'user.email=test@example.com', '-c', 'protocol.file.allow=always', '-c', 'init.defaultBranch=main', ...args],
    {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  ).trim();
}

/** A bare repository `app.git` (two commits on main, a submodule `lib`) and the diff of an uncommitted change. */
function makeRepo(dir: string) {
  mkdirSync(dir, { recursive: true });
  git(dir, 'init', '-q', '--bare', 'lib.git');
  git(dir, 'init', '-q', '--bare', 'app.git');
  const lib = join(dir, 'lib-work');
  git(dir, 'init', '-q', lib);
  writeFileSync(join(lib, 'lib.txt'), 'library\n');
  git(lib, 'add', '.');
  git(lib, 'commit', '-q', '-m', 'lib');
  git(lib, 'push', '-q', join(dir, 'lib.git'), 'HEAD:refs/heads/main');
  const app = join(dir, 'app-work');
  git(dir, 'init', '-q', app);
  writeFileSync(join(app, 'train.py'), "print('first')\n");
  writeFileSync(join(app, 'config.txt'), 'lr=0.1\n');
  writeFileSync(join(app, 'requirements.frozen.txt'), 'from-the-repo==1\n');
  git(app, 'submodule', 'add', '-q', `file://${join(dir, 'lib.git')}`, 'lib');
  git(app, 'add', '.');
  git(app, 'commit', '-q', '-m', 'first');
  const first = git(app, 'rev-parse', 'HEAD');
  writeFileSync(join(app, 'train.py'), "print('second')\n");
  git(app, 'commit', '-q', '-am', 'second');
  const second = git(app, 'rev-parse', 'HEAD');
  git(app, 'push', '-q', join(dir, 'app.git'), 'HEAD:refs/heads/main');
  // An uncommitted change on top of the first commit, as `diff.patch` records it.
  git(app, 'checkout', '-q', first);
  writeFileSync(join(app, 'config.txt'), 'lr=0.5\n');
  const patch = execFileSync(GIT, ['diff'], { cwd: app, encoding: 'utf8' });
  return { remote: `file://${join(dir, 'app.git')}`, first, second, patch };
}

async function setup(extra: Record<string, unknown> = {}) {
  const server = await createWandbTestServer();
  servers.push(server);
  const logger = captureLogger();
  const cacheDir = mkdtempSync(join(root, 'cache-'));
  const resolver = createWandbJobResolver({ apiKey: server.apiKey, baseUrl: server.url, cacheDir, logger, allowFileRemotes: true, ...fast, ...extra });
  resolvers.push(resolver);
  const resolve = (job: string, spec: Partial<LaunchSpec> = {}, onProgress?: (line: string) => void) =>
    resolver.resolve(
      { job, spec: { entity: 'tester', project: 'proj', ...spec } as LaunchSpec, runId: 'run-1', itemId: 'item-1', ...(onProgress ? { onProgress } : {}) },
      { logger },
    );
  return { server, resolver, resolve, logger, cacheDir };
}

async function rejection(p: Promise<unknown>): Promise<LaunchError> {
  try {
    await p;
  } catch (error) {
    if (LaunchError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected the promise to reject');
}

const entrypoint = ['python', 'train.py'];

describe('W&B job resolver: repo jobs', () => {
  let repo: ReturnType<typeof makeRepo>;
  beforeAll(() => {
    repo = makeRepo(join(root, 'repo'));
  });

  it('fetches the commit (not the branch tip) with submodules, applies diff.patch and places requirements.frozen.txt', async () => {
    const { server, resolve } = await setup();
    await server.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-app',
      job: {
        source_type: 'repo',
        source: { git: { remote: repo.remote, commit: repo.first }, entrypoint, dockerfile: 'Dockerfile.train' },
        runtime: '3.10',
        input_types: { wb_type: 'typedDict' },
      },
      requirements: 'torch==2.3.0\n',
      diffPatch: repo.patch,
    });
    const job = (await resolve('job-app:latest')) as ResolvedCodeJob;
    expect(job).toMatchObject({
      kind: 'code',
      source: 'repo',
      job: 'tester/proj/job-app:v0',
      version: 'v0',
      entryPoint: entrypoint,
      runtime: '3.10',
      dockerfile: 'Dockerfile.train',
      inputTypes: { wb_type: 'typedDict' },
      sourceString: `${repo.remote}#${repo.first}`,
    });
    expect(readFileSync(join(job.codeDir, 'train.py'), 'utf8')).toBe("print('first')\n");
    expect(readFileSync(join(job.codeDir, 'config.txt'), 'utf8')).toBe('lr=0.5\n');
    expect(readFileSync(join(job.codeDir, 'lib', 'lib.txt'), 'utf8')).toBe('library\n');
    // The job's requirements win over the repository's, as W&B copies them after the checkout.
    expect(readFileSync(join(job.codeDir, 'requirements.frozen.txt'), 'utf8')).toBe('torch==2.3.0\n');
    expect(git(job.codeDir, 'rev-parse', 'HEAD')).toBe(repo.first);
    expect(git(job.codeDir, 'rev-parse', '--is-shallow-repository')).toBe('true');
  });

  it('falls back to main when the job names no commit, as W&B does', async () => {
    const { server, resolve } = await setup();
    await server.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-tip',
      job: { source_type: 'repo', source: { git: { remote: repo.remote, commit: null }, entrypoint } },
    });
    const job = (await resolve('tester/proj/job-tip:latest')) as ResolvedCodeJob;
    expect(readFileSync(join(job.codeDir, 'train.py'), 'utf8')).toBe("print('second')\n");
    expect(job.sourceString).toBe(`${repo.remote}#${repo.second}`);
  });

  it('refuses file:// remotes unless allowed (W&B fetches only https, ssh and git@host:path)', async () => {
    const { server, resolve } = await setup({ allowFileRemotes: false });
    await server.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-file',
      job: { source_type: 'repo', source: { git: { remote: repo.remote, commit: repo.first }, entrypoint } },
    });
    const e = await rejection(resolve('job-file:latest'));
    expect(e.code).toBe('wandb.git_remote_refused');
    expect(e.stage).toBe('agent');
    expect(e.message).toContain('tester/proj/job-file:v0');
  });

  it('keeps credentials in a remote out of errors and logs', async () => {
    const { server, resolve, logger } = await setup();
    const token = 's3cret-tok3n-value';
    // Port 9 on loopback refuses the connection: the fetch fails and git's message is reported.
    await server.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-creds',
      job: { source_type: 'repo', source: { git: { remote: `https://deploy:${token}@127.0.0.1:9/app.git`, commit: repo.first }, entrypoint } },
    });
    const e = await rejection(resolve('job-creds:latest'));
    expect(e.code).toBe('wandb.git_failed');
    expect(e.message).toContain('https://deploy:***@127.0.0.1:9/app.git');
    expect(errorText(e)).not.toContain(token);
    expect(logger.text()).not.toContain(token);
  });

  it('fails at stage agent when diff.patch does not apply', async () => {
    const { server, resolve } = await setup();
    await server.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-badpatch',
      job: { source_type: 'repo', source: { git: { remote: repo.remote, commit: repo.first }, entrypoint } },
      diffPatch: repo.patch.replace(/lr=0\.1/g, 'lr=9.9'),
    });
    const e = await rejection(resolve('job-badpatch:latest'));
    expect(e.code).toBe('wandb.patch_failed');
    expect(e.stage).toBe('agent');
  });
});

describe('W&B job resolver: artifact and image jobs', () => {
  it('downloads the code artifact named by id, checks every file, and places the job requirements beside it', async () => {
    const { server, resolve, logger } = await setup();
    const code = await server.publishCode({
      entity: 'tester',
      project: 'proj',
      name: 'source-proj-train.py',
      files: { 'train.py': "print('hi')\n", 'pkg/model.py': 'class Model: pass\n', 'data/blob.bin': Buffer.alloc(70_000, 7) },
    });
    await server.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-source',
      job: { source_type: 'artifact', source: { artifact: artifactIdString(code), entrypoint }, runtime: '3.11' },
      requirements: 'numpy==2.0\n',
    });
    const job = (await resolve('tester/proj/job-source:latest')) as ResolvedCodeJob;
    expect(job).toMatchObject({
      kind: 'code',
      source: 'artifact',
      job: 'tester/proj/job-source:v0',
      sourceString: 'tester/proj/source-proj-train.py:v0',
      runtime: '3.11',
      entryPoint: entrypoint,
    });
    expect(readFileSync(join(job.codeDir, 'train.py'), 'utf8')).toBe("print('hi')\n");
    expect(readFileSync(join(job.codeDir, 'pkg', 'model.py'), 'utf8')).toBe('class Model: pass\n');
    expect(readFileSync(join(job.codeDir, 'data', 'blob.bin')).equals(Buffer.alloc(70_000, 7))).toBe(true);
    expect(readFileSync(join(job.codeDir, 'requirements.frozen.txt'), 'utf8')).toBe('numpy==2.0\n');
    // Signed URLs are fetched as W&B's client fetches them: without the API key.
    expect(server.downloads.length).toBeGreaterThan(0);
    expect(server.downloads.every((d) => !d.authorized && d.status === 200)).toBe(true);
    expect(logger.text()).not.toContain(server.apiKey);
    expect(logger.text()).not.toContain('sig=');
  });

  it('resolves aliases and versions: latest moves, vN and custom aliases stay', async () => {
    const { server, resolve } = await setup();
    const image = (tag: string) => ({ source_type: 'image' as const, source: { image: `registry.local/train:${tag}`, entrypoint: ['/app/run', '--fast'] } });
    await server.publishJob({ entity: 'tester', project: 'proj', name: 'job-img', job: image('a'), aliases: ['prod'] });
    await server.publishJob({ entity: 'tester', project: 'proj', name: 'job-img', job: image('b') });
    expect(await resolve('job-img:latest')).toEqual({
      kind: 'image',
      image: 'registry.local/train:b',
      job: 'tester/proj/job-img:v1',
      version: 'v1',
      entryPoint: ['/app/run', '--fast'],
    });
    expect(await resolve('job-img:prod')).toMatchObject({ image: 'registry.local/train:a', version: 'v0' });
    expect(await resolve('job-img:v0')).toMatchObject({ image: 'registry.local/train:a', job: 'tester/proj/job-img:v0' });
    const missing = await rejection(resolve('job-img:v7'));
    expect(missing.code).toBe('wandb.job_not_found');
    expect(missing.message).toContain('tester/proj/job-img:v7');
    expect((await rejection(resolve('other/proj/job-img:v0'))).code).toBe('wandb.job_not_found');
  });

  it('fails at stage agent naming the job and the artifact when the code artifact was deleted', async () => {
    const { server, resolve } = await setup();
    const code = await server.publishCode({ entity: 'tester', project: 'proj', name: 'source-gone', files: { 'train.py': 'x\n' } });
    await server.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-gone',
      job: { source_type: 'artifact', source: { artifact: artifactIdString(code), entrypoint } },
    });
    server.deleteArtifact(code.id);
    const e = await rejection(resolve('job-gone:latest'));
    expect(e.code).toBe('wandb.artifact_deleted');
    expect(e.stage).toBe('agent');
    expect(e.message).toContain('tester/proj/job-gone:v0');
    expect(e.message).toContain('tester/proj/source-gone:v0');
    // By name, a deleted version has lost its aliases: not found, still naming it.
    await server.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-gone2',
      job: { source_type: 'artifact', source: { artifact: 'wandb-artifact://tester/proj/source-gone:latest', entrypoint } },
    });
    const byName = await rejection(resolve('job-gone2:latest'));
    expect(byName.code).toBe('wandb.code_artifact_not_found');
    expect(byName.message).toContain('tester/proj/source-gone:latest');
  });

  it('retries a download that fails its digest check once, and fails the second time with stage agent', async () => {
    const { server, resolve, logger } = await setup();
    const code = await server.publishCode({
      entity: 'tester',
      project: 'proj',
      name: 'source-flaky',
      files: { 'train.py': "print('ok')\n", 'weights.bin': Buffer.alloc(4096, 1) },
    });
    await server.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-flaky',
      job: { source_type: 'artifact', source: { artifact: artifactIdString(code), entrypoint } },
    });
    server.addDownloadFault({ kind: 'corrupt', artifactId: code.id, path: 'weights.bin' });
    const job = (await resolve('job-flaky:latest')) as ResolvedCodeJob;
    expect(readFileSync(join(job.codeDir, 'weights.bin')).equals(Buffer.alloc(4096, 1))).toBe(true);
    expect(server.downloads.filter((d) => d.path === 'weights.bin').map((d) => d.fault ?? 'ok')).toEqual(['corrupt', 'ok']);
    expect(logger.text()).toContain('failed its digest check');

    const code2 = await server.publishCode({ entity: 'tester', project: 'proj', name: 'source-broken', files: { 'train.py': "print('broken')\n" } });
    await server.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-broken',
      job: { source_type: 'artifact', source: { artifact: artifactIdString(code2), entrypoint } },
    });
    server.addDownloadFault({ kind: 'corrupt', artifactId: code2.id, times: 2 });
    const e = await rejection(resolve('job-broken:latest'));
    expect(e.code).toBe('wandb.digest_mismatch');
    expect(e.stage).toBe('agent');
    expect(e.message).toContain('cannot resolve job job-broken:latest');
    expect(e.message).toContain('"train.py" of code artifact tester/proj/source-broken:v0');
    expect(server.countFileDownloads(code2.id)).toBe(2);
  });

  it('retries a download cut off mid-stream', async () => {
    const { server, resolve } = await setup();
    const big = Buffer.alloc(3 * 1024 * 1024, 9);
    const code = await server.publishCode({ entity: 'tester', project: 'proj', name: 'source-cut', files: { 'big.bin': big } });
    await server.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-cut',
      job: { source_type: 'artifact', source: { artifact: artifactIdString(code), entrypoint: ['python', 'big.bin'] } },
    });
    server.addDownloadFault({ kind: 'cut', artifactId: code.id });
    const job = (await resolve('job-cut:latest')) as ResolvedCodeJob;
    expect(readFileSync(join(job.codeDir, 'big.bin')).equals(big)).toBe(true);
    expect(server.downloads.filter((d) => d.path === 'big.bin').map((d) => d.fault ?? 'ok')).toEqual(['cut', 'ok']);
  });

  it('a second resolution of the same version downloads nothing', async () => {
    const { server, resolve } = await setup();
    const code = await server.publishCode({ entity: 'tester', project: 'proj', name: 'source-cached', files: { 'train.py': 'x = 1\n' } });
    await server.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-cached',
      job: { source_type: 'artifact', source: { artifact: artifactIdString(code), entrypoint } },
    });
    const first = (await resolve('job-cached:latest')) as ResolvedCodeJob;
    const downloads = server.downloads.length;
    expect(downloads).toBeGreaterThan(0);
    const [second, third] = (await Promise.all([resolve('job-cached:latest'), resolve('job-cached:v0')])) as ResolvedCodeJob[];
    expect(server.downloads.length).toBe(downloads);
    expect(second!.codeDir).toBe(first.codeDir);
    expect(third!.codeDir).toBe(first.codeDir);
    // A new version with other code is fetched.
    const code2 = await server.publishCode({ entity: 'tester', project: 'proj', name: 'source-cached', files: { 'train.py': 'x = 2\n' } });
    await server.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-cached',
      job: { source_type: 'artifact', source: { artifact: artifactIdString(code2), entrypoint } },
    });
    const next = (await resolve('job-cached:latest')) as ResolvedCodeJob;
    expect(next.codeDir).not.toBe(first.codeDir);
    expect(readFileSync(join(next.codeDir, 'train.py'), 'utf8')).toBe('x = 2\n');
    expect(readFileSync(join(first.codeDir, 'train.py'), 'utf8')).toBe('x = 1\n');
  });

  it('reports progress for large artifacts', async () => {
    const { server, resolve } = await setup();
    const code = await server.publishCode({
      entity: 'tester',
      project: 'proj',
      name: 'source-large',
      files: { 'a.bin': Buffer.alloc(6 * 1024 * 1024, 1), 'b.bin': Buffer.alloc(6 * 1024 * 1024, 2) },
    });
    await server.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-large',
      job: { source_type: 'artifact', source: { artifact: artifactIdString(code), entrypoint: ['python', 'a.bin'] } },
    });
    const lines: string[] = [];
    await resolve('job-large:latest', {}, (l) => lines.push(l));
    expect(lines[0]).toBe('fetching 12.0 MiB in 2 files of code artifact tester/proj/source-large:v0');
    expect(lines.at(-1)).toBe('fetched 12.0 of 12.0 MiB of code artifact tester/proj/source-large:v0');
    expect(lines.length).toBeGreaterThan(3);
  });
});

describe('W&B job resolver: notebook jobs', () => {
  const notebookFixture = (name: string) => readFileSync(new URL(`../test-support/notebooks/${name}`, import.meta.url), 'utf8');

  it('converts the notebook of an artifact job to a script beside it and runs that, leaving a shared non-notebook copy alone', async () => {
    const { server, resolve } = await setup();
    const code = await server.publishCode({
      entity: 'tester',
      project: 'proj',
      name: 'source-proj-train.ipynb',
      files: { 'nb/train.ipynb': notebookFixture('train.ipynb'), 'nb/train.py': "print('a file of the same name')\n" },
    });
    const source = { artifact: artifactIdString(code), entrypoint: ['python3', 'nb/train.ipynb'] };
    await server.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-nb',
      job: { source_type: 'artifact', source: { ...source, notebook: true }, runtime: '3.11' },
    });
    await server.publishJob({ entity: 'tester', project: 'proj', name: 'job-plain', job: { source_type: 'artifact', source } });
    const job = (await resolve('job-nb:latest')) as ResolvedCodeJob;
    expect(job.entryPoint).toEqual(['python3', 'nb/train.py']);
    const script = readFileSync(join(job.codeDir, 'nb', 'train.py'), 'utf8');
    expect(script.startsWith('#!/usr/bin/env python\n# coding: utf-8\n\n# # Train\n')).toBe(true);
    expect(script).toContain("get_ipython().run_line_magic('matplotlib', 'inline')\nimport json\n");
    expect(script).not.toContain('pip install');
    expect(readFileSync(join(job.codeDir, 'nb', 'train.ipynb'), 'utf8')).toBe(notebookFixture('train.ipynb'));
    // The same code artifact for a job that is no notebook: its own directory, the file as published.
    const plain = (await resolve('job-plain:latest')) as ResolvedCodeJob;
    expect(plain.codeDir).not.toBe(job.codeDir);
    expect(plain.entryPoint).toEqual(['python3', 'nb/train.ipynb']);
    expect(readFileSync(join(plain.codeDir, 'nb', 'train.py'), 'utf8')).toBe("print('a file of the same name')\n");
    // Cached: converted once.
    const downloads = server.downloads.length;
    const again = (await resolve('job-nb:latest')) as ResolvedCodeJob;
    expect(again.codeDir).toBe(job.codeDir);
    expect(again.entryPoint).toEqual(['python3', 'nb/train.py']);
    expect(server.downloads.length).toBe(downloads);
  });

  it('converts the notebook of a repo job after the checkout', async () => {
    const { server, resolve } = await setup();
    const dir = join(root, 'nb-repo');
    mkdirSync(dir, { recursive: true });
    git(dir, 'init', '-q', '--bare', 'nb.git');
    const work = join(dir, 'work');
    git(dir, 'init', '-q', work);
    writeFileSync(join(work, 'plain.ipynb'), notebookFixture('plain.ipynb'));
    git(work, 'add', '.');
    git(work, 'commit', '-q', '-m', 'notebook');
    const commit = git(work, 'rev-parse', 'HEAD');
    git(work, 'push', '-q', join(dir, 'nb.git'), 'HEAD:refs/heads/main');
    await server.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-nb-repo',
      job: {
        source_type: 'repo',
        source: { git: { remote: `file://${join(dir, 'nb.git')}`, commit }, entrypoint: ['python3', 'plain.ipynb'], notebook: true },
      },
    });
    const job = (await resolve('job-nb-repo:latest')) as ResolvedCodeJob;
    expect(job.entryPoint).toEqual(['python3', 'plain.py']);
    expect(execFileSync('python3', ['plain.py', 'x'], { cwd: job.codeDir, encoding: 'utf8' })).toBe("plain ['x']\n");
  });

  it('fails at stage agent naming the job and the notebook when the notebook is malformed or missing', async () => {
    const { server, resolve } = await setup();
    const code = await server.publishCode({
      entity: 'tester',
      project: 'proj',
      name: 'source-bad-nb',
      files: { 'bad.ipynb': notebookFixture('malformed.ipynb') },
    });
    const job = (entrypoint: string[]) => ({ source_type: 'artifact', source: { artifact: artifactIdString(code), entrypoint, notebook: true } });
    await server.publishJob({ entity: 'tester', project: 'proj', name: 'job-bad-nb', job: job(['python', 'bad.ipynb']) });
    await server.publishJob({ entity: 'tester', project: 'proj', name: 'job-no-nb', job: job(['python', 'gone.ipynb']) });
    await server.publishJob({ entity: 'tester', project: 'proj', name: 'job-empty-nb', job: job([]) });
    const bad = await rejection(resolve('job-bad-nb:latest'));
    expect(bad).toMatchObject({ code: 'wandb.notebook_invalid', stage: 'agent' });
    expect(bad.message).toContain('notebook bad.ipynb of job tester/proj/job-bad-nb:v0 is invalid');
    expect(bad.message).toContain('cells[1].source');
    const gone = await rejection(resolve('job-no-nb:latest'));
    expect(gone).toMatchObject({ code: 'wandb.job_invalid', stage: 'agent' });
    expect(gone.message).toBe("notebook gone.ipynb of job tester/proj/job-no-nb:v0 is not in the job's code");
    const empty = await rejection(resolve('job-empty-nb:latest'));
    expect(empty.message).toContain('source.entrypoint');
    expect(empty.message).toContain('job tester/proj/job-empty-nb:v0');
  });
});

describe('W&B job resolver: cache limit', () => {
  async function twoJobs(server: WandbTestServer) {
    const codes = [];
    for (const n of ['one', 'two']) {
      const code = await server.publishCode({
        entity: 'tester',
        project: 'proj',
        name: `source-${n}`,
        files: { 'train.py': `print('${n}')\n`, 'blob.bin': Buffer.alloc(100_000, n.length) },
      });
      await server.publishJob({
        entity: 'tester',
        project: 'proj',
        name: `job-${n}`,
        job: { source_type: 'artifact', source: { artifact: artifactIdString(code), entrypoint } },
      });
      codes.push(code);
    }
    return codes;
  }

  it('evicts the code of a released job once past cacheMaxBytes, keeps held code, and fetches evicted code again', async () => {
    // Smaller than either job's code: only holds keep an entry.
    const { server, resolver, resolve } = await setup({ cacheMaxBytes: 50_000 });
    const [codeOne] = await twoJobs(server);
    const one = (await resolve('job-one:latest')) as ResolvedCodeJob;
    const two = (await resolve('job-two:latest')) as ResolvedCodeJob;
    // Both held (the agent has not copied them yet): over the limit, nothing removed.
    expect(existsSync(join(one.codeDir, 'blob.bin')) && existsSync(join(two.codeDir, 'blob.bin'))).toBe(true);
    resolver.release(one);
    await server.waitFor(() => !existsSync(one.codeDir), 10_000, 'the released code to be evicted');
    // Still held, though the cache is over its limit with it alone.
    expect(readFileSync(join(two.codeDir, 'train.py'), 'utf8')).toBe("print('two')\n");
    const downloads = server.countFileDownloads(codeOne!.id);
    const again = (await resolve('job-one:latest')) as ResolvedCodeJob;
    expect(again.codeDir).toBe(one.codeDir);
    expect(readFileSync(join(again.codeDir, 'train.py'), 'utf8')).toBe("print('one')\n");
    expect(server.countFileDownloads(codeOne!.id)).toBe(downloads + 2);
    resolver.release(two);
    resolver.release(again);
  });

  it('lets held code go after cacheHoldMs when the job is never released, least recently used first', async () => {
    const { server, resolve } = await setup({ cacheMaxBytes: 150_000, cacheHoldMs: 50 });
    await twoJobs(server);
    const one = (await resolve('job-one:latest')) as ResolvedCodeJob;
    const two = (await resolve('job-two:latest')) as ResolvedCodeJob;
    await server.waitFor(() => !existsSync(one.codeDir), 10_000, 'the code held past cacheHoldMs to be evicted');
    expect(existsSync(join(two.codeDir, 'blob.bin'))).toBe(true);
  });

  it('validates the cache options naming the field', async () => {
    const server = await createWandbTestServer();
    servers.push(server);
    const make = (extra: Record<string, unknown>) => () =>
      createWandbJobResolver({ apiKey: server.apiKey, baseUrl: server.url, cacheDir: join(root, 'never'), ...fast, ...extra });
    expect(make({ cacheMaxBytes: -1 })).toThrow(/cacheMaxBytes/);
    expect(make({ cacheMaxBytes: Number.NaN })).toThrow(/cacheMaxBytes/);
    expect(make({ cacheHoldMs: '1h' })).toThrow(/cacheHoldMs/);
    expect(make({ cacheHoldMs: 2 ** 31 })).toThrow(/cacheHoldMs/);
  });
});

describe('W&B job resolver: hostile input', () => {
  it('refuses a wandb-job.json that is not JSON, or has an unknown source_type, naming the job', async () => {
    const { server, resolve } = await setup();
    await server.publishJob({ entity: 'tester', project: 'proj', name: 'job-corrupt', job: '{"source_type": "repo", "source": {' });
    const e = await rejection(resolve('job-corrupt:latest'));
    expect(e.code).toBe('wandb.job_invalid');
    expect(e.stage).toBe('agent');
    expect(e.message).toContain('wandb-job.json of job tester/proj/job-corrupt:v0 is not JSON');
    await server.publishJob({ entity: 'tester', project: 'proj', name: 'job-odd', job: { source_type: 'notebook-server', source: {} } });
    const odd = await rejection(resolve('job-odd:latest'));
    expect(odd).toBeInstanceOf(LaunchValidationError);
    expect(odd.message).toContain('tester/proj/job-odd:v0');
    expect(odd.message).toContain('source_type');
  });

  it('refuses an entry point that escapes the code directory', async () => {
    const { server, resolve } = await setup();
    const code = await server.publishCode({ entity: 'tester', project: 'proj', name: 'source-esc', files: { 'train.py': 'x\n' } });
    for (const [name, ep] of [
      ['job-up', ['python', '../x.py']],
      ['job-abs', ['python', '/etc/passwd']],
    ] as const) {
      await server.publishJob({
        entity: 'tester',
        project: 'proj',
        name,
        job: { source_type: 'artifact', source: { artifact: artifactIdString(code), entrypoint: [...ep] } },
      });
      const e = await rejection(resolve(`${name}:latest`));
      expect(e.code).toBe('wandb.job_entrypoint_escapes');
      expect(e.stage).toBe('agent');
      expect(e.message).toContain(`tester/proj/${name}:v0`);
    }
  });

  it('refuses a manifest whose paths leave the directory, and one that does not match the version digest', async () => {
    const { server, resolve, cacheDir } = await setup();
    const code = await server.publishCode({ entity: 'tester', project: 'proj', name: 'source-evil', files: { 'train.py': 'x\n' } });
    await server.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-evil',
      job: { source_type: 'artifact', source: { artifact: artifactIdString(code), entrypoint } },
    });
    const entry = [...code.files.values()][0]!;
    const contents = (path: string) =>
      JSON.stringify({ version: 1, storagePolicy: 'wandb-storage-policy-v1', contents: { [path]: { digest: entry.digest, size: entry.size } } });
    code.manifestJson = contents('other.py');
    const tampered = await rejection(resolve('job-evil:latest'));
    expect(tampered.code).toBe('wandb.artifact_manifest_invalid');
    expect(tampered.message).toContain('W&B gives the version');
    code.manifestJson = contents('../../evil.py');
    code.digest = manifestDigest([{ path: '../../evil.py', digest: entry.digest }]);
    const escaping = await rejection(resolve('job-evil:latest'));
    expect(escaping.message).toContain("'..' segment");
    expect(existsSync(join(cacheDir, '..', 'evil.py'))).toBe(false);
  });

  it('refuses an artifact that is not a job, and validates options naming the field', async () => {
    const { server, resolve } = await setup();
    await server.publishCode({ entity: 'tester', project: 'proj', name: 'not-a-job', files: { 'a.py': 'x\n' } });
    expect((await rejection(resolve('not-a-job:latest'))).code).toBe('wandb.not_a_job');
    expect(() => createWandbJobResolver({ apiKey: 'k-0123456789', cacheDir: 'relative/dir', env: {} })).toThrow(/cacheDir: must be an absolute path/);
    expect(() => createWandbJobResolver({ apiKey: 'k-0123456789', env: {} } as never)).toThrow(/cacheDir/);
    expect(() => createWandbJobResolver({ apiKey: 'k-0123456789', cacheDir: root, gitPat: '/usr/bin/git', env: {} } as never)).toThrow(/gitPat/);
    expect(() => createWandbJobResolver({ cacheDir: root, env: {}, homedir: root })).toThrow(/no W&B API key/);
    // The binary passes process.env itself, which is not a plain object.
    const fromProcessEnv = createWandbJobResolver({ apiKey: 'k-0123456789', cacheDir: root, env: process.env });
    expect(fromProcessEnv.name).toBe('wandb');
    await fromProcessEnv.close?.();
    expect(() => createWandbJobResolver({ apiKey: 'k-0123456789', cacheDir: root, env: 'PATH=/bin' as never })).toThrow(/env/);
  });

  it('names the operation and never the key when W&B rejects the key', async () => {
    const { server } = await setup();
    const resolver = createWandbJobResolver({ apiKey: 'wrong-key-0123456789abcdef', baseUrl: server.url, cacheDir: mkdtempSync(join(root, 'c-')), ...fast });
    resolvers.push(resolver);
    const e = await rejection(resolver.resolve({ job: 'tester/proj/x:latest', spec: {} as LaunchSpec, runId: 'r', itemId: 'i' }, { logger: captureLogger() }));
    expect(e.code).toBe('wandb.unauthorized');
    expect(e.message).toContain('ArtifactMembershipByName');
    expect(errorText(e)).not.toContain('wrong-key-0123456789abcdef');
  });
});
