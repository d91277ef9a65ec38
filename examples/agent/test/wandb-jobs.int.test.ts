import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { artifactIdString, createWandbTestServer, type WandbTestServer } from '@launch/testkit';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, sandbox, start, type Running } from './helpers.js';

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
});
