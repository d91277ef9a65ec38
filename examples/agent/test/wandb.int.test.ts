import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createWandbTestServer, type WandbTestServer } from '@launch/testkit';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, sandbox, start, type Running } from './helpers.js';

// The binary against the W&B Launch test server over real HTTP: source selection, run and enqueue.
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

describe('launch-agent with W&B', () => {
  it('picks W&B from WANDB_ENTITY + WANDB_API_KEY: enqueue pushes with priority, run pops and runs, SIGTERM reports KILLED', async () => {
    const { server, box, config } = await setup();
    const agent = start(['run', '-c', config], box.env);
    running.push(agent);
    const record = await server.waitFor(() => [...server.state.agents.values()][0], 20_000, 'the agent to register');

    const out = join(box.dir, 'out.txt');
    const enq = await start(['enqueue', '-c', config, '-q', 'local', '--priority', 'critical', '--', 'sh', '-c', `echo "$WANDB_RUN_ID" > ${out}`], box.env)
      .exited;
    expect(enq.stderr).toBe('');
    expect(enq.code).toBe(0);
    const id = enq.stdout.trim();
    const item = server.state.items.get(id);
    expect(item?.priority).toBe(0);

    await server.waitFor(() => item!.state === 'CLAIMED' && existsSync(out) && readFileSync(out, 'utf8').trim() !== '', 20_000, 'the job to run');
    expect(readFileSync(out, 'utf8').trim()).toBe(item!.runName);

    agent.child.kill('SIGTERM');
    const done = await agent.exited;
    expect(done.code).toBe(0);
    expect(record.agentStatus).toBe('KILLED');
    for (const text of [done.stdout, done.stderr, enq.stdout]) expect(text).not.toContain(server.apiKey);
  });

  it('exits 2 with a clear message when W&B rejects the key, for run and enqueue, without printing it', async () => {
    const { box, config } = await setup();
    const wrong = 'wrong-key-cccccccccccccccccccccccccccccc';
    const env = { ...box.env, WANDB_API_KEY: wrong };
    const run = await start(['run', '-c', config], env).exited;
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('the API key from WANDB_API_KEY was rejected');
    const enq = await start(['enqueue', '-c', config, '-q', 'local', '--', 'true'], env).exited;
    expect(enq.code).toBe(2);
    expect(enq.stderr).toContain('rejected the API key from WANDB_API_KEY');
    for (const text of [run.stdout, run.stderr, enq.stdout, enq.stderr]) expect(text).not.toContain(wrong);
  });

  it('names the missing queue at start-up', async () => {
    const { box, config } = await setup();
    const run = await start(['run', '-c', config, '-q', 'locl'], box.env).exited;
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('queue "locl" (did you mean "local"?)');
  });
});
