import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { artifactIdString, createWandbTestServer, dockerService, registryServices, serviceAvailable, type WandbTestServer } from '@launch/testkit';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cli, readText, sandbox, status } from './helpers.js';

// W&B jobs through the binary with the docker builder: items naming a job (`job: entity/project/name:alias`) served by
// the W&B test server, the job's code built by the test kit's real dockerd into an image pushed to its real registry,
// and run by the local-container runner on that engine.
const docker = dockerService();
const reg = registryServices();

describe.runIf(serviceAvailable('the test Docker engine and registries', !!docker && !!reg))('launch-agent with W&B jobs and the docker builder', () => {
  beforeAll(() => assertBuilt());

  const servers: WandbTestServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });

  /**
   * The embedded queue with the W&B key at hand (so the binary gives it the W&B job resolver), the test engine as
   * DOCKER_HOST, and a config with the docker builder pushing to its own repository of the plain registry.
   */
  async function setup(extraEnv: Record<string, string> = {}) {
    const server = await createWandbTestServer({ queues: [{ entity: 'tester', name: 'local' }] });
    servers.push(server);
    const box = await sandbox({
      WANDB_API_KEY: server.apiKey,
      WANDB_BASE_URL: server.url,
      DOCKER_HOST: `unix://${docker!.socketPath}`,
      ...extraEnv,
    });
    const repository = `${reg!.plain}/wandb-jobs/${randomBytes(4).toString('hex')}`;
    const config = join(box.dir, 'launch-config.yaml');
    writeFileSync(config, `builder:\n  type: docker\nregistry:\n  uri: ${repository}\n`);
    return { server, box, config, repository };
  }

  async function enqueue(env: Record<string, string>, dir: string, spec: object): Promise<string> {
    const path = join(dir, `spec-${randomBytes(4).toString('hex')}.json`);
    writeFileSync(path, JSON.stringify(spec));
    const r = await cli(['enqueue', '--spec', path], env);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.trim();
  }

  async function tags(repository: string): Promise<string[]> {
    const path = repository.slice(reg!.plain.length + 1);
    const res = await fetch(`http://${reg!.plain}/v2/${path}/tags/list`);
    if (res.status === 404) return [];
    expect(res.status).toBe(200);
    return ((await res.json()) as { tags: string[] | null }).tags ?? [];
  }

  async function manifestDigest(repository: string, tag: string): Promise<string | null> {
    const path = repository.slice(reg!.plain.length + 1);
    const res = await fetch(`http://${reg!.plain}/v2/${path}/manifests/${tag}`, {
      method: 'HEAD',
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' },
    });
    expect(res.status).toBe(200);
    return res.headers.get('docker-content-digest');
  }

  /** W&B's tag for a job version's image: sha256(`<artifact name>:v<version>` + Dockerfile)[:8], the name being `name:vN`. */
  function wandbTag(jobName: string, version: number, dockerfile: string): string {
    return createHash('sha256').update(`${jobName}:v${version}:vv${version}${dockerfile}`).digest('hex').slice(0, 8);
  }

  /** The `image <uri> built` / `(cached)` lines the binary prints for an item. */
  const imageLines = (stderr: string, id: string) => stderr.split('\n').filter((line) => line.includes(`[${id}] image `));

  it("builds an artifact job from its build_context with its own Dockerfile, pushes it under W&B's name:vN tag, runs it to finished; a second item of that version reuses the image", async () => {
    const { server, box, config, repository } = await setup();
    const dockerfile = `FROM ${docker!.baseImage}\nCOPY . /code\nWORKDIR /code\n`;
    const code = await server.publishCode({
      entity: 'tester',
      project: 'proj',
      name: 'source-proj-app',
      files: {
        'app/Dockerfile': dockerfile,
        'app/run.sh': [
          'echo "data: $(cat data.txt)"',
          'echo "config: $WANDB_CONFIG"',
          'echo "artifacts: $WANDB_ARTIFACTS"',
          'if [ -e outside.txt ] || [ -e app ]; then echo "context: the whole code"; else echo "context: app only"; fi',
          '',
        ].join('\n'),
        'app/data.txt': 'from the code artifact',
        'outside.txt': 'not in the build context',
      },
    });
    const job = await server.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-source-proj-app',
      job: {
        source_type: 'artifact',
        source: { artifact: artifactIdString(code), entrypoint: ['sh', 'run.sh'], dockerfile: 'Dockerfile', build_context: 'app' },
        runtime: '3.12',
      },
      aliases: ['latest'],
    });
    // W&B's form from the resolved version, even though the item asks for `latest`.
    const image = `${repository}:${wandbTag('job-source-proj-app', job.versionIndex, dockerfile)}`;
    const spec = { job: 'tester/proj/job-source-proj-app:latest', resource: 'local-container', overrides: { run_config: { lr: 0.25 } } };

    const first = await enqueue(box.env, box.dir, spec);
    const r1 = await cli(['run', '-c', config, '--exit-when-idle'], box.env, 180_000);
    expect(r1.code, r1.stderr).toBe(0);
    expect(r1.stderr).toContain(`launch: registry: ${repository} (OCI registry, from registry.uri)`);
    expect(imageLines(r1.stderr, first), r1.stderr).toEqual([expect.stringContaining(`[${first}] image ${image} built`)]);
    expect(
      (await status(box.env)).items.find((i) => i.id === first),
      r1.stderr,
    ).toMatchObject({ state: 'finished', exitCode: 0 });
    expect(await tags(repository)).toEqual([image.split(':').pop()]);
    const digest = await manifestDigest(repository, image.split(':').pop()!);
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const log1 = await readText(join(box.stateDir, 'logs', `${first}.log`));
    expect(log1).toContain('data: from the code artifact');
    expect(log1).toContain('config: {"lr":0.25}');
    expect(log1).toContain('artifacts: {"_wandb_job":"tester/proj/job-source-proj-app:latest"}');
    expect(log1).toContain('context: app only');
    const downloads = server.countFileDownloads(code.id);
    expect(downloads).toBeGreaterThan(0);

    // The same job version again: the image is in the registry, so nothing is built or pushed.
    const second = await enqueue(box.env, box.dir, { ...spec, overrides: { run_config: { lr: 0.5 } } });
    const r2 = await cli(['run', '-c', config, '--exit-when-idle'], box.env, 180_000);
    expect(r2.code, r2.stderr).toBe(0);
    expect(imageLines(r2.stderr, second), r2.stderr).toEqual([expect.stringContaining(`[${second}] image ${image} (cached)`)]);
    expect(r2.stderr).not.toMatch(/ built$/m);
    expect(
      (await status(box.env)).items.find((i) => i.id === second),
      r2.stderr,
    ).toMatchObject({ state: 'finished', exitCode: 0 });
    expect(await tags(repository)).toEqual([image.split(':').pop()]);
    expect(await manifestDigest(repository, image.split(':').pop()!)).toBe(digest);
    const log2 = await readText(join(box.stateDir, 'logs', `${second}.log`));
    expect(log2).toContain('data: from the code artifact');
    expect(log2).toContain('config: {"lr":0.5}');
    // The code came from the agent's job cache: not downloaded again.
    expect(server.countFileDownloads(code.id)).toBe(downloads);
    for (const text of [r1.stderr, r1.stdout, r2.stderr, r2.stdout, log1, log2]) expect(text).not.toContain(server.apiKey);
  }, 400_000);

  it('builds a repo job from a file:// git remote at its commit with diff.patch applied, and runs it to finished', async () => {
    const { server, box, config, repository } = await setup({ LAUNCH_ALLOW_FILE_GIT_REMOTES: '1' });
    const dockerfile = `FROM ${docker!.baseImage}\nCOPY . /code\nWORKDIR /code\n`;
    const repo = makeRepo(box.dir, dockerfile);
    const job = await server.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-repo-run.sh',
      // The job names the first commit; the branch has moved on since (data.txt says "commit two" there).
      job: {
        source_type: 'repo',
        source: { git: { remote: repo.remote, commit: repo.first }, entrypoint: ['sh', 'run.sh'], dockerfile: 'Dockerfile' },
        runtime: '3.12',
      },
      diffPatch: repo.patch,
      aliases: ['latest'],
    });
    const image = `${repository}:${wandbTag('job-repo-run.sh', job.versionIndex, dockerfile)}`;
    const id = await enqueue(box.env, box.dir, {
      job: 'tester/proj/job-repo-run.sh:latest',
      resource: 'local-container',
      overrides: { run_config: { lr: 0.5 } },
    });
    const run = await cli(['run', '-c', config, '--exit-when-idle'], box.env, 180_000);
    expect(run.code, run.stderr).toBe(0);
    expect(imageLines(run.stderr, id), run.stderr).toEqual([expect.stringContaining(`[${id}] image ${image} built`)]);
    expect(
      (await status(box.env)).items.find((i) => i.id === id),
      run.stderr,
    ).toMatchObject({ state: 'finished', exitCode: 0 });
    expect(await tags(repository)).toEqual([image.split(':').pop()]);
    const log = await readText(join(box.stateDir, 'logs', `${id}.log`));
    // The first commit's files with the patch on top, built into the image.
    expect(log).toContain('data: commit one');
    expect(log).toContain('note: patched');
    expect(log).toContain('config: {"lr":0.5}');
  }, 300_000);

  it("runs an image job as it is, with the job's entry point, building nothing", async () => {
    const { server, box, config, repository } = await setup();
    await server.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-busybox',
      job: {
        source_type: 'image',
        source: { image: docker!.baseImage, entrypoint: ['sh', '-c', 'echo "image: $WANDB_DOCKER"; echo "config: $WANDB_CONFIG"'] },
      },
      aliases: ['latest'],
    });
    const id = await enqueue(box.env, box.dir, { job: 'tester/proj/job-busybox:latest', resource: 'local-container', overrides: { run_config: { lr: 1 } } });
    const run = await cli(['run', '-c', config, '--exit-when-idle'], box.env, 180_000);
    expect(run.code, run.stderr).toBe(0);
    expect(
      (await status(box.env)).items.find((i) => i.id === id),
      run.stderr,
    ).toMatchObject({ state: 'finished', exitCode: 0 });
    expect(imageLines(run.stderr, id)).toEqual([]);
    expect(await tags(repository)).toEqual([]);
    const log = await readText(join(box.stateDir, 'logs', `${id}.log`));
    expect(log).toContain(`image: ${docker!.baseImage}`);
    expect(log).toContain('config: {"lr":1}');
    // An image job fetches no code: the job artifact's two files only.
    expect(server.countFileDownloads()).toBe(2);
  }, 300_000);
});

/**
 * A git repository served as a bare `file://` remote: a first commit with the Dockerfile, `run.sh` (prints what it
 * reads and the run config) and `data.txt`, a second commit changing `data.txt`, and a `diff.patch` against the first
 * commit changing `note.txt`.
 */
function makeRepo(dir: string, dockerfile: string): { remote: string; first: string; patch: string } {
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
  writeFileSync(join(work, 'Dockerfile'), dockerfile);
  writeFileSync(join(work, 'run.sh'), 'echo "data: $(cat data.txt)"\necho "note: $(cat note.txt)"\necho "config: $WANDB_CONFIG"\n');
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
