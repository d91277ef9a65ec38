import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { artifactIdString, createWandbTestServer, type WandbTestServer } from '@launch/testkit';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cli, sandbox, start, status, type Running } from './helpers.js';

// W&B jobs through the binary: an item naming a job (`job: entity/project/name:alias`), as W&B's UI and
// `wandb launch -j` enqueue it, resolved through the W&B test server's artifact API and run.
beforeAll(() => assertBuilt());

const servers: WandbTestServer[] = [];
const running: Running[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) {
    r.child.kill('SIGKILL');
    await r.exited;
  }
  for (const s of servers.splice(0)) await s.close();
});

async function setup() {
  const server = await createWandbTestServer({ queues: [{ entity: 'tester', name: 'local' }] });
  servers.push(server);
  const box = await sandbox({ WANDB_API_KEY: server.apiKey, WANDB_BASE_URL: server.url, WANDB_ENTITY: 'tester' });
  const config = join(box.dir, 'launch-config.yaml');
  writeFileSync(config, 'queues: [local]\npoll_interval: 0.2\n');
  return { server, box, config };
}

/**
 * The embedded queue with the W&B key at hand (no entity, so not the W&B source): the binary gives it the W&B job
 * resolver too, and `launch-agent status --json` shows how each run ended.
 */
async function embeddedSetup(extraEnv: Record<string, string> = {}) {
  const server = await createWandbTestServer({ queues: [{ entity: 'tester', name: 'local' }] });
  servers.push(server);
  const box = await sandbox({ WANDB_API_KEY: server.apiKey, WANDB_BASE_URL: server.url, ...extraEnv });
  return { server, box };
}

/** A code artifact and the job that runs it: `sh run.sh`, which records where it ran and what it got. */
async function publishTrainJob(server: WandbTestServer, out: string) {
  const code = await server.publishCode({
    entity: 'tester',
    project: 'proj',
    name: 'source-proj-run.sh',
    files: {
      'run.sh': `pwd > ${out}.cwd\nprintf '%s' "$WANDB_CONFIG" > ${out}.config\nprintf '%s' "$WANDB_ARTIFACTS" > ${out}.artifacts\ncat lib/data.txt > ${out}\necho written > result.txt\n`,
      'lib/data.txt': 'from the code artifact\n',
    },
  });
  await server.publishJob({
    entity: 'tester',
    project: 'proj',
    name: 'job-source-proj-run.sh',
    job: { source_type: 'artifact', source: { artifact: artifactIdString(code), entrypoint: ['sh', 'run.sh'] }, runtime: '3.12' },
    aliases: ['latest'],
  });
  return code;
}

describe('launch-agent with W&B jobs', () => {
  it('runs an artifact job from its code, with run_config as WANDB_CONFIG; a second item of the same version downloads nothing', async () => {
    const { server, box, config } = await setup();
    const out = join(box.dir, 'out');
    const code = await publishTrainJob(server, out);
    const spec = join(box.dir, 'spec.json');
    writeFileSync(
      spec,
      JSON.stringify({ job: 'tester/proj/job-source-proj-run.sh:latest', resource: 'local-process', overrides: { run_config: { lr: 0.25 } } }),
    );
    const agent = start(['run', '-c', config], box.env);
    running.push(agent);
    const enq = await start(['enqueue', '-c', config, '-q', 'local', '--spec', spec], box.env).exited;
    expect(enq.stderr).toBe('');
    expect(enq.code).toBe(0);

    await server
      .waitFor(() => existsSync(out) && readFileSync(out, 'utf8') !== '', 60_000, 'the job to run')
      .catch((e: Error) => {
        throw new Error(`${e.message}\n${agent.stderr()}`);
      });
    expect(readFileSync(out, 'utf8')).toBe('from the code artifact\n');
    expect(JSON.parse(readFileSync(`${out}.config`, 'utf8'))).toEqual({ lr: 0.25 });
    expect(JSON.parse(readFileSync(`${out}.artifacts`, 'utf8'))).toEqual({ _wandb_job: 'tester/proj/job-source-proj-run.sh:latest' });
    // It ran in a private copy of the code, not in the agent's cache.
    const cwd = readFileSync(`${out}.cwd`, 'utf8').trim();
    expect(cwd.startsWith(box.stateDir)).toBe(false);
    const downloads = server.countFileDownloads(code.id);
    expect(downloads).toBe(2);

    // The same job again: resolved from the cache.
    for (const suffix of ['', '.cwd', '.config', '.artifacts']) writeFileSync(`${out}${suffix}`, '');
    expect((await start(['enqueue', '-c', config, '-q', 'local', '--spec', spec], box.env).exited).code).toBe(0);
    await server.waitFor(() => readFileSync(out, 'utf8') !== '', 60_000, 'the second job to run');
    expect(server.countFileDownloads(code.id)).toBe(downloads);
    // The private copy of the first run is gone.
    expect(existsSync(join(cwd, 'result.txt'))).toBe(false);

    agent.child.kill('SIGTERM');
    const done = await agent.exited;
    expect(done.code).toBe(0);
    for (const text of [done.stdout, done.stderr]) expect(text).not.toContain(server.apiKey);
  }, 150_000);

  it('fails an item whose code artifact was deleted at stage agent, naming the job, and keeps serving', async () => {
    const { server, box, config } = await setup();
    const out = join(box.dir, 'out');
    const code = await publishTrainJob(server, out);
    server.deleteArtifact(code.id);
    const spec = join(box.dir, 'spec.json');
    writeFileSync(spec, JSON.stringify({ job: 'tester/proj/job-source-proj-run.sh:latest', resource: 'local-process' }));
    const agent = start(['run', '-c', config], box.env);
    running.push(agent);
    const enq = await start(['enqueue', '-c', config, '-q', 'local', '--spec', spec], box.env).exited;
    expect(enq.code).toBe(0);
    const item = await server
      .waitFor(() => [...server.state.items.values()].find((i) => i.state === 'FAILED'), 60_000, 'the item to fail')
      .catch((e: Error) => {
        throw new Error(`${e.message}\n${agent.stderr()}`);
      });
    expect(item.failure?.stage).toBe('agent');
    expect(item.failure?.message).toContain('job-source-proj-run.sh');
    expect(item.failure?.message).toMatch(/deleted/);
    expect(existsSync(out)).toBe(false);
    // Still serving: an ordinary job after it runs.
    const marker = join(box.dir, 'after');
    expect((await start(['enqueue', '-c', config, '-q', 'local', '--', 'sh', '-c', `echo ok > ${marker}`], box.env).exited).code).toBe(0);
    await server.waitFor(() => existsSync(marker), 60_000, 'the next job to run');
    expect(agent.child.exitCode).toBeNull();
  }, 150_000);

  it('runs a repo job from a file:// git remote at its commit, with diff.patch applied, in a private copy of the checkout', async () => {
    const { server, box } = await embeddedSetup();
    const out = join(box.dir, 'out');
    const repo = makeRepo(box.dir, out);
    await server.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-repo-run.sh',
      // The job names the first commit; the branch has moved on since (data.txt says "commit two" there).
      job: { source_type: 'repo', source: { git: { remote: repo.remote, commit: repo.first }, entrypoint: ['sh', 'run.sh'] }, runtime: '3.12' },
      diffPatch: repo.patch,
      aliases: ['latest'],
    });
    const env = { ...box.env, LAUNCH_ALLOW_FILE_GIT_REMOTES: '1' };
    const spec = join(box.dir, 'spec.json');
    writeFileSync(spec, JSON.stringify({ job: 'tester/proj/job-repo-run.sh:latest', resource: 'local-process', overrides: { run_config: { lr: 0.5 } } }));
    const enq = await cli(['enqueue', '-q', 'local', '--spec', spec], env);
    expect(enq.code, enq.stderr).toBe(0);
    const run = await cli(['run', '-q', 'local', '--exit-when-idle'], env, 120_000);
    expect(run.code, run.stderr).toBe(0);

    const item = (await status(env)).items.find((i) => i.id === enq.stdout.trim());
    expect(item, run.stderr).toMatchObject({ state: 'finished', exitCode: 0 });
    // The first commit's files, the patch on top, and HEAD at that commit.
    expect(readFileSync(out, 'utf8')).toBe('commit one\npatched\n');
    expect(readFileSync(`${out}.head`, 'utf8').trim()).toBe(repo.first);
    expect(JSON.parse(readFileSync(`${out}.config`, 'utf8'))).toEqual({ lr: 0.5 });
    // It ran in its own copy of the checkout (not the agent's cache), removed once the run ended.
    const cwd = readFileSync(`${out}.cwd`, 'utf8').trim();
    expect(cwd.startsWith(join(tmpdir(), 'launch-code-'))).toBe(true);
    expect(cwd.startsWith(box.stateDir)).toBe(false);
    expect(existsSync(cwd)).toBe(false);
    // Without LAUNCH_ALLOW_FILE_GIT_REMOTES, the same job is refused at stage agent, naming the remote.
    const again = await cli(['enqueue', '-q', 'local', '--spec', spec], box.env);
    expect(again.code, again.stderr).toBe(0);
    writeFileSync(out, '');
    expect((await cli(['run', '-q', 'local', '--exit-when-idle'], box.env, 120_000)).code).toBe(0);
    const refused = (await status(box.env)).items.find((i) => i.id === again.stdout.trim());
    expect(refused).toMatchObject({ state: 'failed', failure: { stage: 'agent' } });
    expect(refused!.failure!.message).toContain('job-repo-run.sh');
    expect(refused!.failure!.message).toContain(repo.remote);
    expect(readFileSync(out, 'utf8')).toBe('');
  }, 180_000);

  it('refuses an image job on the local-process runner at stage run, naming the job and its image (as W&B), and runs nothing', async () => {
    const { server, box } = await embeddedSetup();
    const out = join(box.dir, 'out');
    writeFileSync(out, '');
    await server.publishJob({
      entity: 'tester',
      project: 'proj',
      name: 'job-trainer',
      job: { source_type: 'image', source: { image: 'registry.local/trainer:1', entrypoint: ['sh', '-c', `echo from the job > ${out}`] } },
      aliases: ['latest'],
    });
    const spec = join(box.dir, 'spec.json');
    writeFileSync(spec, JSON.stringify({ job: 'tester/proj/job-trainer:latest', resource: 'local-process' }));
    const item = await cli(['enqueue', '-q', 'local', '--spec', spec], box.env);
    expect(item.code, item.stderr).toBe(0);
    const run = await cli(['run', '-q', 'local', '--exit-when-idle'], box.env, 120_000);
    expect(run.code, run.stderr).toBe(0);

    const failed = (await status(box.env)).items.find((i) => i.id === item.stdout.trim());
    expect(failed, run.stderr).toMatchObject({ state: 'failed', failure: { stage: 'run' } });
    expect(failed!.failure!.message).toContain('job tester/proj/job-trainer:');
    expect(failed!.failure!.message).toContain('registry.local/trainer:1');
    expect(failed!.failure!.message).toContain('the local-process runner runs no images');
    expect(readFileSync(out, 'utf8')).toBe('');
    // An image job fetches no code: the job artifact's two files only.
    expect(server.countFileDownloads()).toBe(2);
  }, 150_000);
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
  writeFileSync(
    join(work, 'run.sh'),
    [
      `pwd > ${out}.cwd`,
      `git rev-parse HEAD > ${out}.head`,
      `printf '%s' "$WANDB_CONFIG" > ${out}.config`,
      `cat data.txt note.txt > ${out}`,
      'echo written > result.txt',
      '',
    ].join('\n'),
  );
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
