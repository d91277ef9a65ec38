import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryQueue, createScriptedRunner, waitFor, type MemoryQueue, type ScriptStep } from '@launch/testkit';
import { createAgent } from './create-agent.js';
import type { Builder } from '../contracts/builder.js';
import type { Runner } from '../contracts/runner.js';
import { LaunchError } from '../errors.js';
import type { Agent, AgentOptions, AgentStopped } from './types.js';
import { readChunkedEnv } from './run-env.js';

const agents: Agent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop('test over')));
});

function start(options: Partial<AgentOptions> & Pick<AgentOptions, 'source' | 'runners'>): Agent {
  const agent = createAgent({ queues: ['q'], defaultResource: 'scripted', monitorIntervalMs: 20, env: {}, ...options });
  agents.push(agent);
  return agent;
}

const job = (extra: Record<string, unknown> = {}) => ({ entity: 'ent', project: 'proj', ...extra });
const ops = (q: MemoryQueue, op: string) => q.calls.filter((c) => c.op === op);

describe('createAgent loop', () => {
  it('serves queues round robin: the queue that just gave a job goes to the back', async () => {
    const source = createMemoryQueue();
    for (let i = 0; i < 3; i++) {
      source.enqueue('a', job({ name: `a${i}` }));
      source.enqueue('b', job({ name: `b${i}` }));
    }
    const runner = createScriptedRunner({});
    const agent = start({ source, runners: [runner], queues: ['a', 'b'], maxJobs: 1 });
    await agent.start();
    await waitFor(() => ops(source, 'finish').length === 6, { what: 'six finished jobs' });
    expect(runner.requests.map((r) => r.spec.name)).toEqual(['a0', 'b0', 'a1', 'b1', 'a2', 'b2']);
  });

  it('never runs more than max_jobs at once, and -1 means no limit', async () => {
    const source = createMemoryQueue();
    for (let i = 0; i < 6; i++) source.enqueue('q', job());
    const runner = createScriptedRunner({
      script: () => [
        { state: 'running', ms: 60 },
        { state: 'finished', exitCode: 0 },
      ],
    });
    await start({ source, runners: [runner], maxJobs: 2 }).start();
    await waitFor(() => ops(source, 'finish').length === 6, { what: 'all jobs' });
    expect(runner.peak).toBe(2);

    const source2 = createMemoryQueue();
    for (let i = 0; i < 6; i++) source2.enqueue('q', job());
    const runner2 = createScriptedRunner({
      script: () => [
        { state: 'running', ms: 200 },
        { state: 'finished', exitCode: 0 },
      ],
    });
    await start({ source: source2, runners: [runner2], maxJobs: -1 }).start();
    await waitFor(() => ops(source2, 'finish').length === 6, { what: 'all jobs (unlimited)' });
    expect(runner2.peak).toBe(6);
  });

  it('counts sweep schedulers against max_schedulers: a surplus scheduler is claimed once and waits, regular jobs go on', async () => {
    const source = createMemoryQueue();
    const sched = { uri: 'placeholder-uri-scheduler', ...job() };
    const s1 = source.enqueue('q', { ...sched, name: 's1' });
    const s2 = source.enqueue('q', { ...sched, name: 's2' });
    source.enqueue('q', job({ name: 'regular' }));
    const runner = createScriptedRunner({
      script: (r) =>
        r.spec.name === 's1'
          ? [
              { state: 'running', ms: 300 },
              { state: 'finished', exitCode: 0 },
            ]
          : [{ state: 'finished', exitCode: 0 }],
    });
    await start({ source, runners: [runner], maxJobs: 5, maxSchedulers: 1 }).start();
    await waitFor(() => ops(source, 'finish').length === 3, { what: 'both schedulers and the regular job' });
    expect(runner.peak).toBeLessThanOrEqual(2);
    // The regular job behind the waiting scheduler did not wait for the first scheduler to end.
    const order = runner.requests.map((r) => r.spec.name);
    expect(order).toEqual(['s1', 'regular', 's2']);
    // Each item was popped exactly once, and none was handed back or left claimed.
    const popped = ops(source, 'pop').flatMap((c) => (c.op === 'pop' && c.itemId ? [c.itemId] : []));
    expect(popped.filter((id) => id === s1)).toHaveLength(1);
    expect(popped.filter((id) => id === s2)).toHaveLength(1);
    expect(ops(source, 'release')).toHaveLength(0);
    expect(ops(source, 'ack')).toHaveLength(3);
  });

  it('treats the placeholder uri on a local-process item as a scheduler only for `wandb scheduler` or a job (W&B rule)', async () => {
    const { isSchedulerSpec } = await import('../spec.js');
    const uri = 'placeholder-uri-scheduler';
    expect(isSchedulerSpec({ uri, resource: 'local-process', overrides: { entry_point: ['python', 'train.py'] } })).toBe(false);
    expect(isSchedulerSpec({ uri, resource: 'local-process' })).toBe(false);
    expect(isSchedulerSpec({ uri, resource: 'local-process', overrides: { entry_point: ['wandb', 'scheduler', 'abc123'] } })).toBe(true);
    expect(isSchedulerSpec({ uri, resource: 'local-process', overrides: { entry_point: ['wandb', 'scheduler'] } })).toBe(false);
    expect(isSchedulerSpec({ uri, resource: 'local-process', job: 'ent/proj/sched:latest' })).toBe(true);
    expect(isSchedulerSpec({ uri, resource: 'kubernetes' })).toBe(true);
    expect(isSchedulerSpec({ uri: null, resource: 'kubernetes' })).toBe(false);
  });

  it('runs a burst of placeholder-uri local-process jobs at once, each popped once, on a source without release', async () => {
    const base = createMemoryQueue();
    const { release: _release, ...source } = base;
    const uri = 'placeholder-uri-scheduler';
    for (let i = 0; i < 20; i++)
      base.enqueue('q', { uri, resource: 'local-process', overrides: { entry_point: ['python', 'train.py'] }, ...job({ name: `j${i}` }) });
    for (let i = 0; i < 2; i++)
      base.enqueue('q', { uri, resource: 'local-process', overrides: { entry_point: ['wandb', 'scheduler', `sweep${i}`] }, ...job({ name: `s${i}` }) });
    let running = 0;
    let schedulersRunning = 0;
    let peakSchedulers = 0;
    const runner = createScriptedRunner({
      resources: ['local-process'],
      script: () => [
        { state: 'running', ms: 150 },
        { state: 'finished', exitCode: 0 },
      ],
    });
    const agent = start({ source: source as typeof base, runners: [runner], maxJobs: -1, maxSchedulers: 1 });
    agent.on('run:state', ({ item, state }) => {
      const sched = (item.spec as { name: string }).name.startsWith('s');
      if (state === 'running') {
        running++;
        if (sched) peakSchedulers = Math.max(peakSchedulers, ++schedulersRunning);
      } else if (state === 'finished') {
        running--;
        if (sched) schedulersRunning--;
      }
    });
    await agent.start();
    await waitFor(() => ops(base, 'finish').length === 22, { what: 'the burst and both schedulers' });
    expect(runner.peak).toBeGreaterThanOrEqual(21);
    expect(peakSchedulers).toBe(1);
    const popped = ops(base, 'pop').flatMap((c) => (c.op === 'pop' && c.itemId ? [c.itemId] : []));
    expect(popped).toHaveLength(22);
    expect(new Set(popped).size).toBe(22);
    expect(ops(base, 'ack')).toHaveLength(22);
    expect(running).toBe(0);
  });

  it('pops once per poll when idle, whatever max_jobs is, and claims several at once only while pops return items', async () => {
    const source = createMemoryQueue({ notify: false, pollIntervalMs: 50 });
    const runner = createScriptedRunner({});
    const agent = start({ source, runners: [runner], maxJobs: -1, pollIntervalMs: 50 });
    const polls: { pops: number; items: number }[] = [];
    agent.on('agent:poll', (p) => polls.push(p));
    await agent.start();
    await waitFor(() => polls.length >= 5, { what: 'five idle polls' });
    expect(polls.slice(0, 5).every((p) => p.pops === 1 && p.items === 0)).toBe(true);
    for (let i = 0; i < 30; i++) source.enqueue('q', job({ name: `b${i}` }));
    await waitFor(() => ops(source, 'finish').length === 30, { what: 'the burst' });
    const popped = ops(source, 'pop').flatMap((c) => (c.op === 'pop' && c.itemId ? [c.itemId] : []));
    expect(new Set(popped).size).toBe(30);
    expect(popped).toHaveLength(30);
    expect(polls.some((p) => p.pops > 1)).toBe(true);
    // Every round of several pops followed a round whose pops all returned items.
    for (let i = 1; i < polls.length; i++) if (polls[i]!.pops > 1) expect(polls[i - 1]!.items).toBe(polls[i - 1]!.pops);
  });

  it('a start timeout carries the last diagnosis seen while the run was starting', async () => {
    const source = createMemoryQueue();
    source.enqueue('q', job());
    const diagnosis = { category: 'ImagePullError' as const, message: 'cannot pull image reg/img:1', hint: 'check the image name and the pull secret' };
    const runner = createScriptedRunner({ script: () => [{ state: 'starting', ms: 60_000, diagnosis }] });
    await start({ source, runners: [runner], startTimeout: 0.2 }).start();
    const fail = await waitFor(() => ops(source, 'fail')[0] as Extract<(typeof source.calls)[number], { op: 'fail' }> | undefined, { what: 'timeout failure' });
    expect(fail.failure.message).toContain('StartTimeout: the run did not start within 200 ms (last seen: ImagePullError: cannot pull image reg/img:1)');
    expect(fail.failure.message).toContain('check the image name and the pull secret');
  });

  it('does not emit item:finished while the source cannot record the end, retries, and tells the backend only once it is recorded', async () => {
    const source = createMemoryQueue();
    let failures = 2;
    const realFinish = source.finish.bind(source);
    source.finish = async (item, result) => {
      if (failures-- > 0) throw new Error('disk full');
      return realFinish(item, result);
    };
    const id = source.enqueue('q', job());
    const runner = createScriptedRunner({});
    const agent = start({ source, runners: [runner] });
    const finished: string[] = [];
    agent.on('item:finished', (e) => finished.push(e.item.id));
    agent.on('run:state', (e) => {
      if (e.state === 'finished') expect(finished).toEqual([]);
    });
    await agent.start();
    await waitFor(() => finished.length === 1, { what: 'item:finished after the retries' });
    expect(finished).toEqual([id]);
    expect(ops(source, 'finish')).toHaveLength(1);
    expect(runner.reported).toHaveLength(1);

    // A source that never records: no event, the backend keeps the run (not told it was reported).
    const broken = createMemoryQueue();
    broken.finish = async () => {
      throw new Error('read-only file system');
    };
    broken.enqueue('q', job());
    const runner2 = createScriptedRunner({});
    // Every wait shortened to at most 5 ms, so the six retries take no real time.
    const fast = {
      now: () => Date.now(),
      setTimeout: (fn: () => void, ms: number) => setTimeout(fn, Math.min(ms, 5)),
      clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout),
    };
    const clockless = start({ source: broken, runners: [runner2], clock: fast });
    const gaveUp: string[] = [];
    const finished2: string[] = [];
    clockless.on('agent:error', (e) => gaveUp.push(e.where));
    clockless.on('item:finished', (e) => finished2.push(e.item.id));
    await clockless.start();
    await waitFor(() => gaveUp.some((w) => w.startsWith('finish (gave up')), { what: 'giving up' });
    expect(finished2).toEqual([]);
    expect(runner2.reported).toEqual([]);
  });

  it('follows the run of an item whose earlier claim was lost instead of starting another; a remote runner that cannot find runs fails it as outcome lost', async () => {
    const source = createMemoryQueue();
    const realPop = source.pop.bind(source);
    source.pop = async (queue, agentId) => {
      const item = await realPop(queue, agentId);
      return item ? { ...item, previousRun: { runId: 'lost1234', agent: 'dead-agent' } } : null;
    };
    source.enqueue('q', job({ docker: { docker_image: 'img:1' } }));
    const adopting = createScriptedRunner({ remote: true, adopt: true });
    await start({ source, runners: [adopting] }).start();
    await waitFor(() => ops(source, 'finish').length === 1, { what: 'the followed run' });
    expect(adopting.requests).toHaveLength(1);
    expect(adopting.requests[0]).toMatchObject({ runId: 'lost1234', attachOnly: true });

    const source2 = createMemoryQueue();
    const realPop2 = source2.pop.bind(source2);
    source2.pop = async (queue, agentId) => {
      const item = await realPop2(queue, agentId);
      return item ? { ...item, previousRun: { runId: 'lost5678' } } : null;
    };
    source2.enqueue('q', job());
    const blind = createScriptedRunner({ remote: true });
    await start({ source: source2, runners: [blind] }).start();
    const fail = await waitFor(() => ops(source2, 'fail')[0] as Extract<(typeof source2.calls)[number], { op: 'fail' }> | undefined, { what: 'outcome lost' });
    expect(fail.failure.stage).toBe('run');
    expect(fail.failure.message).toContain('the outcome of run lost5678 is lost');
    expect(blind.requests).toHaveLength(0);

    // A local runner's run died with its agent: it runs again, with a fresh request (not attach-only).
    const source3 = createMemoryQueue();
    const realPop3 = source3.pop.bind(source3);
    source3.pop = async (queue, agentId) => {
      const item = await realPop3(queue, agentId);
      return item ? { ...item, previousRun: { runId: 'local999' } } : null;
    };
    source3.enqueue('q', job());
    const local = createScriptedRunner({});
    await start({ source: source3, runners: [local] }).start();
    await waitFor(() => ops(source3, 'finish').length === 1, { what: 'the local rerun' });
    expect(local.requests[0]).toMatchObject({ runId: 'local999' });
    expect(local.requests[0]!.attachOnly).toBeUndefined();
  });

  it("a stop cancels a submission still in flight through the call's signal, and hands the item back", async () => {
    const source = createMemoryQueue();
    const id = source.enqueue('q', job());
    let sawSignal: AbortSignal | undefined;
    const hanging = {
      specificationVersion: 'v1' as const,
      name: 'hanging',
      resources: ['scripted'],
      capabilities: { adopt: false, remote: true, needsImage: false },
      run: (_request: unknown, ctx: { signal?: AbortSignal }) =>
        new Promise<never>((_resolve, reject) => {
          sawSignal = ctx.signal;
          ctx.signal?.addEventListener('abort', () => reject(ctx.signal!.reason));
        }),
    };
    const agent = start({ source, runners: [hanging as never] });
    await agent.start();
    await waitFor(() => sawSignal, { what: 'the submission' });
    await agent.stop('test stop');
    expect(sawSignal!.aborted).toBe(true);
    expect(ops(source, 'fail')).toHaveLength(0);
    expect(ops(source, 'requeue')).toMatchObject([{ itemId: id }]);
    expect(ops(source, 'finish')).toMatchObject([{ itemId: id, result: { state: 'stopped' } }]);
  });

  it("converts W&B's legacy flat resource_args forms and reports each conversion as a warning on the item", async () => {
    const source = createMemoryQueue();
    const id = source.enqueue('q', job({ resource: 'kubernetes', resource_args: { kubernetes: { tolerations: [{ key: 'gpu', operator: 'Exists' }] } } }));
    const runner = createScriptedRunner({ resources: ['kubernetes'] });
    await start({ source, runners: [runner] }).start();
    await waitFor(() => ops(source, 'finish').length === 1, { what: 'the converted job' });
    expect(runner.requests[0]!.resourceArgs).toEqual({ spec: { template: { spec: { tolerations: [{ key: 'gpu', operator: 'Exists' }] } } } });
    const warns = ops(source, 'warn') as Extract<(typeof source.calls)[number], { op: 'warn' }>[];
    expect(warns).toHaveLength(1);
    expect(warns[0]).toMatchObject({ itemId: id, warning: { stage: 'agent' } });
    expect(warns[0]!.warning.message).toMatch(/^resource_args\.kubernetes\.tolerations: /);
  });

  it('acks an item before its run is submitted and reports it finished', async () => {
    const source = createMemoryQueue();
    const id = source.enqueue('q', job({ run_id: 'run123' }));
    const runner = createScriptedRunner({});
    await start({ source, runners: [runner] }).start();
    await waitFor(() => ops(source, 'finish').length === 1);
    const ackIndex = source.calls.findIndex((c) => c.op === 'ack');
    expect(source.calls[ackIndex]).toEqual({ op: 'ack', itemId: id, runId: 'run123' });
    expect(runner.requests[0]!.runId).toBe('run123');
    expect(ops(source, 'finish')[0]).toMatchObject({ itemId: id, result: { state: 'finished', runId: 'run123' } });
  });

  it('generates an 8-character run id when the spec has none', async () => {
    const source = createMemoryQueue();
    source.enqueue('q', job());
    const runner = createScriptedRunner({});
    await start({ source, runners: [runner] }).start();
    await waitFor(() => runner.requests.length === 1);
    expect(runner.requests[0]!.runId).toMatch(/^[a-z0-9]{8}$/);
  });

  it('releases the slot after any failure: bad spec (agent), submit error (run), run failure (run), unknown resource', async () => {
    const source = createMemoryQueue();
    source.enqueue('q', 'not an object');
    source.enqueue('q', job({ name: 'boom' }));
    source.enqueue('q', job({ name: 'fails' }));
    source.enqueue('q', job({ resource: 'sagemaker' }));
    source.enqueue('q', job({ name: 'ok' }));
    const runner = createScriptedRunner({
      failSubmit: (r) => (r.spec.name === 'boom' ? new Error('backend refused the job') : undefined),
      script: (r) =>
        r.spec.name === 'fails'
          ? [{ state: 'running' }, { state: 'failed', exitCode: 3, messages: ['container exited'] }]
          : [{ state: 'finished', exitCode: 0 }],
    });
    const agent = start({ source, runners: [runner], maxJobs: 1 });
    await agent.start();
    await waitFor(() => ops(source, 'finish').some((c) => c.op === 'finish' && c.result.state === 'finished'), { what: 'the good job' });
    const fails = ops(source, 'fail') as Extract<(typeof source.calls)[number], { op: 'fail' }>[];
    expect(fails.map((f) => f.failure.stage)).toEqual(['agent', 'run', 'run', 'agent']);
    expect(fails[0]!.failure.message).toMatch(/launch spec is invalid[\s\S]*expected an object, found string/);
    expect(fails[1]!.failure.message).toContain('backend refused the job');
    expect(fails[2]!.failure.message).toContain('exit code 3');
    expect(fails[3]!.failure.message).toContain('no runner handles resource "sagemaker"');
    expect(agent.snapshot().running).toHaveLength(0);
  });

  it('fires the start timeout for a run stuck in starting, cancels it and fails the item', async () => {
    const source = createMemoryQueue();
    source.enqueue('q', job());
    const runner = createScriptedRunner({ script: () => [{ state: 'starting', ms: 60_000 }] });
    await start({ source, runners: [runner], startTimeout: 0.15 }).start();
    const fail = await waitFor(() => ops(source, 'fail')[0] as Extract<(typeof source.calls)[number], { op: 'fail' }> | undefined, { what: 'timeout failure' });
    expect(fail.failure.stage).toBe('run');
    expect(fail.failure.message).toContain('StartTimeout: the run did not start within 150 ms');
    expect(runner.cancels).toHaveLength(1);
  });

  it('cancels a run stopped by the user after stopped_run_timeout', async () => {
    const source = createMemoryQueue();
    source.enqueue('q', job({ run_id: 'stopme' }));
    const runner = createScriptedRunner({ script: () => [{ state: 'running', ms: 60_000 }] });
    await start({ source, runners: [runner], stoppedRunTimeout: 0.1 }).start();
    await waitFor(() => runner.requests.length === 1);
    const asked = Date.now();
    source.stopRequests.add('stopme');
    await waitFor(() => ops(source, 'finish').length === 1, { what: 'stopped run' });
    expect(Date.now() - asked).toBeGreaterThanOrEqual(90);
    expect(runner.cancels).toEqual(['stopme']);
    expect(ops(source, 'finish')[0]).toMatchObject({ result: { state: 'stopped' } });
    expect(ops(source, 'warn').some((w) => w.op === 'warn' && /stop requested/.test(w.warning.message))).toBe(true);
  });

  it('requeues a preempted run with the same run id up to max_resume_count times, with WANDB_RESUME=allow', async () => {
    const source = createMemoryQueue();
    source.enqueue('q', job({ run_id: 'pre1', sweep_id: 'sw' }));
    const runner = createScriptedRunner({ script: () => [{ state: 'running' }, { state: 'preempted' }] });
    await start({ source, runners: [runner], maxResumeCount: 2 }).start();
    const fail = await waitFor(() => ops(source, 'fail')[0] as Extract<(typeof source.calls)[number], { op: 'fail' }> | undefined, { what: 'give-up failure' });
    expect(runner.requests.map((r) => r.runId)).toEqual(['pre1', 'pre1', 'pre1']);
    expect(runner.requests.map((r) => r.env.WANDB_RESUME)).toEqual([undefined, 'allow', 'allow']);
    expect(runner.requests[1]!.spec.sweep_id).toBeUndefined();
    expect(ops(source, 'requeue')).toHaveLength(2);
    expect(fail.failure.message).toMatch(/preempted 2 times/);
  });

  it('fills macros through resource_args and additional_services, leaving unknown ones', async () => {
    const source = createMemoryQueue();
    source.enqueue(
      'q',
      job({
        run_id: 'r42',
        name: 'nice-run',
        author: 'ada',
        docker: { docker_image: 'repo/img:1' },
        resource: 'scripted',
        resource_args: {
          scripted: {
            metadata: { name: 'job-${run_id}', labels: { p: '${project_name}', e: '${entity_name}', who: '${author}' } },
            spec: { image: '${image_uri}', n: '${run_name}', zone: '${MY_ZONE}', keep: '${NOT_SET}' },
            builder: { base_image: 'x' },
          },
        },
        additional_services: [{ config: { metadata: { name: 'svc-${run_id}' } } }],
      }),
    );
    const runner = createScriptedRunner({});
    await start({ source, runners: [runner], env: { MY_ZONE: 'eu-1' } }).start();
    await waitFor(() => runner.requests.length === 1);
    const req = runner.requests[0]!;
    expect(req.resourceArgs).toEqual({
      metadata: { name: 'job-r42', labels: { p: 'proj', e: 'ent', who: 'ada' } },
      spec: { image: 'repo/img:1', n: 'nice-run', zone: 'eu-1', keep: '${NOT_SET}' },
    });
    expect(req.spec.additional_services?.[0]?.config).toEqual({ metadata: { name: 'svc-r42' } });
  });

  it('injects the WANDB_* variables and splits WANDB_CONFIG above 32,670 characters', async () => {
    const source = createMemoryQueue();
    const big = { text: 'x'.repeat(70_000) };
    const id = source.enqueue(
      'q',
      job({
        run_id: 'envrun',
        name: 'n1',
        author: 'ada',
        sweep_id: 'sw1',
        job: 'ent/proj/job:v1',
        docker: { docker_image: 'img:1' },
        overrides: { run_config: big, files: { 'a.yaml': { k: 1 } } },
      }),
    );
    const small = source.enqueue('q', job({ overrides: { run_config: { lr: 0.1 } }, _wandb_api_key: 'spec-key-123456' }));
    const runner = createScriptedRunner({});
    await start({ source, runners: [runner], entity: 'agent-ent', baseUrl: 'http://wandb.local', apiKey: 'agent-key-abcdef' }).start();
    await waitFor(() => runner.requests.length === 2);
    const env = runner.requests[0]!.env;
    expect(env).toMatchObject({
      WANDB_BASE_URL: 'http://wandb.local',
      WANDB_API_KEY: 'agent-key-abcdef',
      WANDB_PROJECT: 'proj',
      WANDB_ENTITY: 'ent',
      WANDB_LAUNCH: 'True',
      WANDB_RUN_ID: 'envrun',
      WANDB_NAME: 'n1',
      WANDB_USERNAME: 'ada',
      WANDB_SWEEP_ID: 'sw1',
      WANDB_LAUNCH_QUEUE_NAME: 'q',
      WANDB_LAUNCH_QUEUE_ENTITY: 'agent-ent',
      WANDB_LAUNCH_TRACE_ID: id,
      WANDB_LAUNCH_FILE_OVERRIDES: JSON.stringify({ 'a.yaml': { k: 1 } }),
      WANDB_ARTIFACTS: JSON.stringify({ _wandb_job: 'ent/proj/job:v1' }),
    });
    expect(env.WANDB_CONFIG).toBeUndefined();
    expect(env.WANDB_CONFIG_0).toHaveLength(32_670);
    expect(env.WANDB_CONFIG_2).toBeDefined();
    expect(JSON.parse(readChunkedEnv('WANDB_CONFIG', env)!)).toEqual(big);
    const env2 = runner.requests[1]!.env;
    expect(env2.WANDB_CONFIG).toBe('{"lr":0.1}');
    expect(env2.WANDB_API_KEY).toBe('spec-key-123456');
    expect(env2.WANDB_USERNAME).toBeUndefined();
    expect(runner.requests[1]!.itemId).toBe(small);
  });

  it('reports POLLING, RUNNING and KILLED', async () => {
    const source = createMemoryQueue();
    const runner = createScriptedRunner({
      script: () => [
        { state: 'running', ms: 1200 },
        { state: 'finished', exitCode: 0 },
      ],
    });
    const agent = start({ source, runners: [runner] });
    await agent.start();
    source.enqueue('q', job());
    await waitFor(() => ops(source, 'finish').length === 1, { what: 'job end' });
    await waitFor(
      () =>
        source.calls
          .filter((c) => c.op === 'status')
          .map((c) => (c as { status: string }).status)
          .join(',')
          .endsWith('POLLING'),
      { what: 'back to POLLING' },
    );
    await agent.stop();
    const statuses = source.calls.filter((c) => c.op === 'status').map((c) => (c as { status: string }).status);
    expect(statuses[0]).toBe('POLLING');
    expect(statuses).toContain('RUNNING');
    expect(statuses.at(-1)).toBe('KILLED');
  });

  it('stops when the source asks (W&B stopPolling), reporting KILLED', async () => {
    const source = createMemoryQueue({ pollIntervalMs: 50 });
    const agent = start({ source, runners: [createScriptedRunner({})] });
    await agent.start();
    const stops: AgentStopped[] = [];
    agent.on('agent:stopped', (e) => stops.push(e));
    source.stopAgent();
    await agent.stopped;
    expect(source.calls.filter((c) => c.op === 'status').at(-1)).toEqual({ op: 'status', status: 'KILLED' });
    expect(stops).toEqual([{ reason: 'stop requested by the queue', cause: 'source' }]);
  });

  it('says why it stopped with a typed cause: requested by stop(), fatal with the error when the loop fails', async () => {
    const requested = start({ source: createMemoryQueue(), runners: [createScriptedRunner({})] });
    const stops: AgentStopped[] = [];
    requested.on('agent:stopped', (e) => stops.push(e));
    await requested.start();
    // A free-text reason that reads like a failure is still a requested stop.
    await requested.stop('fatal: the operator failed over');
    expect(stops).toEqual([{ reason: 'fatal: the operator failed over', cause: 'requested' }]);

    // The loop fails (here: its clock throws once, with a secret in the message): the agent stops as fatal.
    const apiKey = 'k'.repeat(40);
    let boom = false;
    const clock = {
      now: () => {
        if (boom) {
          boom = false;
          throw new Error(`clock broke near ${apiKey}`);
        }
        return Date.now();
      },
      setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms),
      clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout),
    };
    const source = createMemoryQueue();
    const failing = start({ source, runners: [createScriptedRunner({})], clock, apiKey });
    const fatal: AgentStopped[] = [];
    failing.on('agent:stopped', (e) => fatal.push(e));
    await failing.start();
    await waitFor(() => ops(source, 'pop').length >= 1, { what: 'the first poll' });
    boom = true;
    source.enqueue('q', job()); // wakes the loop, whose next turn reads the clock
    await failing.stopped;
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.cause).toBe('fatal');
    expect(fatal[0]!.reason).toBe('the agent loop failed: clock broke near [REDACTED]');
    expect(LaunchError.isInstance(fatal[0]!.error)).toBe(true);
    expect(fatal[0]!.error!.code).toBe('agent.loop_failed');
    expect(fatal[0]!.error!.message).toBe('clock broke near [REDACTED]');
  });

  it('passes adopt a signal that the stop aborts, and adopts nothing found after it', async () => {
    const base = createScriptedRunner({ remote: true, adopt: true });
    let seen: AbortSignal | undefined;
    const adopting: Runner = {
      specificationVersion: 'v1',
      name: base.name,
      resources: base.resources,
      capabilities: base.capabilities,
      run: (request, ctx) => base.run(request, ctx),
      adopt: (_name, ctx) =>
        new Promise((_resolve, reject) => {
          seen = ctx.signal;
          ctx.signal?.addEventListener('abort', () => reject(ctx.signal!.reason));
        }),
    };
    const agent = start({ source: createMemoryQueue(), runners: [adopting] });
    const errors: string[] = [];
    agent.on('agent:error', (e) => errors.push(e.where));
    const starting = agent.start();
    await waitFor(() => seen, { what: 'the adopt call' });
    expect(seen!.aborted).toBe(false);
    await agent.stop('test stop');
    await starting;
    expect(seen!.aborted).toBe(true);
    expect(LaunchError.isInstance(seen!.reason) && seen!.reason.code).toBe('agent.stopping');
    // The aborted call is the stop at work, not an error; and no loop started after the stop.
    expect(errors).toEqual([]);
    expect(agent.snapshot().status).toBe('STOPPED');
  });

  it('polls again the moment a job frees a slot of a full agent instead of waiting for the poll interval', async () => {
    // A one-minute poll interval and no notifications: only the wake-on-slot-free can drain the queue in time.
    const source = createMemoryQueue({ pollIntervalMs: 60_000, notify: false });
    for (let i = 0; i < 5; i++) source.enqueue('q', job());
    await start({ source, runners: [createScriptedRunner({})], maxJobs: 1 }).start();
    await waitFor(() => ops(source, 'finish').length === 5, { timeoutMs: 5_000, what: 'five jobs without waiting for polls' });
  });

  it('does not pop again when a job ends while slots are free: jobs ending one by one cost no pops before the poll interval', async () => {
    const source = createMemoryQueue({ pollIntervalMs: 60_000, notify: false });
    for (let i = 0; i < 4; i++) source.enqueue('q', job({ name: `j${i}` }));
    // The jobs end one by one, 40 ms apart, on an agent with free slots: a wake per ending used to pop each time.
    const runner = createScriptedRunner({
      script: (r) => [
        { state: 'running', ms: 40 * (1 + Number(r.spec.name!.slice(1))) },
        { state: 'finished', exitCode: 0 },
      ],
    });
    await start({ source, runners: [runner], maxJobs: 10 }).start();
    await waitFor(() => ops(source, 'finish').length === 4, { what: 'four jobs' });
    await new Promise((r) => setTimeout(r, 100));
    // 1 (an item, so the next round is wide) + 8 (3 items, 5 empty) + 1 (the narrow round after it) + 1 (the
    // last job ended: the agent learns it is idle); without the fix each ending job added one.
    expect(ops(source, 'pop')).toHaveLength(11);
  });

  it('sleeps until the source notifies work', async () => {
    const source = createMemoryQueue({ pollIntervalMs: 60_000 });
    const agent = start({ source, runners: [createScriptedRunner({})] });
    await agent.start();
    await waitFor(() => ops(source, 'pop').length >= 1);
    source.enqueue('q', job());
    await waitFor(() => ops(source, 'finish').length === 1, { timeoutMs: 5_000, what: 'job after notification' });
  });

  it('forwards run messages and diagnoses as queue warnings once each', async () => {
    const source = createMemoryQueue();
    source.enqueue('q', job());
    const diagnosis = { category: 'ImagePullError' as const, message: 'cannot pull repo/img:1', hint: 'check the image name' };
    const steps: ScriptStep[] = [
      { state: 'starting', messages: ['0/3 nodes are available'], ms: 30 },
      { state: 'starting', messages: ['0/3 nodes are available'], diagnosis, ms: 30 },
      { state: 'running', diagnosis, ms: 30 },
      { state: 'finished', exitCode: 0 },
    ];
    await start({ source, runners: [createScriptedRunner({ script: () => steps })] }).start();
    await waitFor(() => ops(source, 'finish').length === 1);
    const warnings = ops(source, 'warn').map((w) => (w as { warning: { message: string } }).warning.message);
    expect(warnings).toEqual(['0/3 nodes are available', 'ImagePullError: cannot pull repo/img:1 (hint: check the image name)']);
  });

  it("reports a build's warnings at stage build and runs the image with the entry point the build chose", async () => {
    const source = createMemoryQueue();
    source.enqueue('q', job({ name: 'chosen', overrides: { entry_point: ['python', 'train.py'] } }));
    source.enqueue('q', job({ name: 'kept', overrides: { entry_point: ['python', 'train.py'] } }));
    const builder: Builder = {
      specificationVersion: 'v1',
      name: 'stub',
      async build(request) {
        request.onWarning?.(`left out package foo for ${request.spec.name}`);
        return request.spec.name === 'chosen'
          ? { imageUri: 'built:1', cached: false, entryPoint: ['python', 'src/train.py'] }
          : { imageUri: 'built:2', cached: true };
      },
    };
    const runner = createScriptedRunner({ needsImage: true });
    await start({ source, runners: [runner], builder }).start();
    await waitFor(() => ops(source, 'finish').length === 2, { what: 'both jobs' });
    expect(ops(source, 'warn').map((w) => (w as { warning: { stage: string; message: string } }).warning)).toEqual([
      { stage: 'build', message: 'left out package foo for chosen' },
      { stage: 'build', message: 'left out package foo for kept' },
    ]);
    expect(runner.requests.map((r) => [r.image, r.entryPoint])).toEqual([
      ['built:1', ['python', 'src/train.py']],
      ['built:2', ['python', 'train.py']],
    ]);
  });

  it('reports run warnings under the stage the runner declares (warningStage), else under its name', async () => {
    const steps: ScriptStep[] = [
      { state: 'starting', messages: ['pod pending'], ms: 30 },
      { state: 'finished', exitCode: 0 },
    ];
    const stages = async (runner: ReturnType<typeof createScriptedRunner>) => {
      const source = createMemoryQueue();
      source.enqueue('q', job());
      await start({ source, runners: [runner] }).start();
      await waitFor(() => ops(source, 'finish').length === 1, { what: 'the job' });
      return ops(source, 'warn').map((w) => (w as { warning: { stage: string; message: string } }).warning);
    };
    expect(await stages(createScriptedRunner({ script: () => steps, warningStage: 'Kubernetes' }))).toEqual([{ stage: 'Kubernetes', message: 'pod pending' }]);
    expect(await stages(createScriptedRunner({ script: () => steps }))).toEqual([{ stage: 'scripted', message: 'pod pending' }]);
  });

  it('refuses overrides.entry_point in secure mode', async () => {
    const source = createMemoryQueue();
    source.enqueue('q', job({ overrides: { entry_point: ['sh'] } }));
    await start({ source, runners: [createScriptedRunner({})], secureMode: true }).start();
    const fail = await waitFor(() => ops(source, 'fail')[0] as { failure: { message: string; stage: string } } | undefined);
    expect(fail.failure).toMatchObject({ stage: 'agent' });
    expect(fail.failure.message).toContain('secure_mode');
  });

  it('fails at stage build with a hint when a job needs an image and there is no builder', async () => {
    const source = createMemoryQueue();
    // No image and no W&B job: only a builder could make one (an item naming a job is job-code.test.ts's).
    source.enqueue('q', job({ uri: 'https://github.com/acme/train.git', overrides: { entry_point: ['python', 'train.py'] } }));
    const runner = createScriptedRunner({});
    (runner.capabilities as { needsImage: boolean }).needsImage = true;
    await start({ source, runners: [runner] }).start();
    const fail = await waitFor(() => ops(source, 'fail')[0] as { failure: { message: string; stage: string } } | undefined);
    expect(fail.failure.stage).toBe('build');
    expect(fail.failure.message).toMatch(/builder\.type/);
  });

  it('on stop, cancels local runs and requeues their items; leaves remote runs running', async () => {
    const local = createMemoryQueue();
    local.enqueue('q', job({ run_id: 'loc' }));
    const runner = createScriptedRunner({ script: () => [{ state: 'running', ms: 60_000 }] });
    const agent = start({ source: local, runners: [runner] });
    await agent.start();
    await waitFor(() => agent.snapshot().running[0]?.state === 'running');
    await agent.stop('SIGTERM');
    expect(runner.cancels).toEqual(['loc']);
    const requeue = ops(local, 'requeue')[0] as { spec: Record<string, unknown> };
    expect(requeue.spec.run_id).toBe('loc');

    const remoteQ = createMemoryQueue();
    remoteQ.enqueue('q', job({ run_id: 'rem' }));
    const remote = createScriptedRunner({ remote: true, script: () => [{ state: 'running', ms: 60_000 }] });
    const agent2 = start({ source: remoteQ, runners: [remote] });
    await agent2.start();
    await waitFor(() => agent2.snapshot().running[0]?.state === 'running');
    await agent2.stop('SIGTERM');
    expect(remote.cancels).toEqual([]);
    expect(ops(remoteQ, 'requeue')).toHaveLength(0);
    expect(ops(remoteQ, 'fail')).toHaveLength(0);
  });

  it('survives 1,000 hostile queue items, failing each with a clear message and freeing every slot', async () => {
    const source = createMemoryQueue();
    const rand = (n: number) => Math.floor(Math.random() * n);
    const hostile: unknown[] = [
      null,
      42,
      'str',
      [],
      [1, 2],
      true,
      { overrides: { args: 'not-a-list' } },
      { overrides: { entry_point: [1, 2] } },
      { run_id: 'bad id with spaces' },
      { resource_args: 'nope' },
      { env: { 'BAD-NAME': 'x' } },
      { env: { OK: 5 } },
      { docker: { docker_image: 12 } },
      { _resume_count: -1 },
      { project: 'x'.repeat(2_000_000), resource: 99 },
    ];
    for (let i = 0; i < 1000; i++) {
      const base = hostile[i % hostile.length];
      source.enqueue('q', i % 7 === 0 ? { [`k${rand(1e6)}`]: rand(10), overrides: { args: [rand(5)] } } : base);
    }
    const runner = createScriptedRunner({});
    const agent = start({ source, runners: [runner], maxJobs: 8 });
    await agent.start();
    await waitFor(() => ops(source, 'fail').length === 1000, { timeoutMs: 30_000, what: '1000 failures' });
    const fails = ops(source, 'fail') as Extract<(typeof source.calls)[number], { op: 'fail' }>[];
    for (const f of fails) {
      expect(f.failure.stage).toBe('agent');
      expect(f.failure.message).toMatch(/launch spec is invalid:\n {2}- .*(expected|found)/);
      expect(f.failure.message.length).toBeLessThan(2_000);
    }
    expect(runner.requests).toHaveLength(0);
    expect(agent.snapshot().running).toHaveLength(0);
    source.enqueue('q', job({ name: 'still-alive' }));
    await waitFor(() => ops(source, 'finish').length === 1, { what: 'a good job after the storm' });
  });

  it('never lets an API key reach a log line, a warning or a failure message', async () => {
    const lines: string[] = [];
    const logger = {
      debug: (o: object | string, m?: string) => lines.push(JSON.stringify(o) + (m ?? '')),
      info: (o: object | string, m?: string) => lines.push(JSON.stringify(o) + (m ?? '')),
      warn: (o: object | string, m?: string) => lines.push(JSON.stringify(o) + (m ?? '')),
      error: (o: object | string, m?: string) => lines.push(JSON.stringify(o) + (m ?? '')),
    };
    const source = createMemoryQueue();
    const specKey = 'spec-secret-key-0123456789';
    const agentKey = 'agent-secret-key-9876543210';
    source.enqueue('q', job({ _wandb_api_key: specKey, name: 'leaky' }));
    source.enqueue('q', { _wandb_api_key: specKey, overrides: { args: 5 } });
    const runner = createScriptedRunner({
      script: () => [
        { state: 'running', messages: [`oops WANDB_API_KEY=${agentKey} printed`, `spec key ${specKey}`] },
        { state: 'failed', exitCode: 1, messages: [`key was ${agentKey}`] },
      ],
    });
    const agent = start({ source, runners: [runner], logger, apiKey: agentKey, env: { WANDB_API_KEY: agentKey } });
    await agent.start();
    await waitFor(() => ops(source, 'fail').length === 2);
    const everything = lines.join('\n') + JSON.stringify(source.calls.filter((c) => c.op !== 'register'));
    expect(everything).not.toContain(agentKey);
    expect(everything).not.toContain(specKey);
    expect(everything).toContain('[REDACTED]');
    expect(runner.requests[0]!.env.WANDB_API_KEY).toBe(specKey);
  });

  it('refuses bad options at creation with the option name', () => {
    const source = createMemoryQueue();
    expect(() => createAgent({ source, queues: ['q'], runners: [createScriptedRunner({})], maxJobs: -2 })).toThrow(/max_jobs must be -1/);
    expect(() => createAgent({ source, queues: [], runners: [createScriptedRunner({})] })).toThrow(/at least one queue/);
  });

  it('refuses, at creation, a backend whose specificationVersion it does not know, naming it and the version found', () => {
    const source = createMemoryQueue();
    const runner = createScriptedRunner({});
    const backend = (name: string, version: unknown) => ({ specificationVersion: version, name }) as never;
    const refusal = (options: Partial<AgentOptions>): LaunchError => {
      try {
        createAgent({ source, queues: ['q'], runners: [runner], ...options });
      } catch (error) {
        if (LaunchError.isInstance(error)) return error;
        throw error;
      }
      throw new Error('createAgent accepted the backend');
    };
    const cases: [Partial<AgentOptions>, string][] = [
      [
        { source: { ...source, specificationVersion: 'v2' } as never },
        'queue source "memory" implements contract specificationVersion "v2"; this agent knows "v1"',
      ],
      [
        { runners: [runner, { ...runner, name: 'future', specificationVersion: 'v9' } as never] },
        'runner "future" implements contract specificationVersion "v9"; this agent knows "v1"',
      ],
      [{ builder: backend('docker', 'v2') }, 'builder "docker" implements contract specificationVersion "v2"; this agent knows "v1"'],
      [{ registry: backend('ecr', undefined) }, 'registry "ecr" implements contract specificationVersion none; this agent knows "v1"'],
      [{ contextStore: backend('s3', 2) }, 'context store "s3" implements contract specificationVersion number; this agent knows "v1"'],
    ];
    expect(cases).toHaveLength(5);
    for (const [options, message] of cases) {
      const error = refusal(options);
      expect(error.code).toBe('agent.unsupported_backend');
      expect(error.message).toBe(message);
      expect(error.hint).toMatch(/upgrade @launch\/core/);
    }
    // The versions it knows pass.
    expect(() => createAgent({ source, queues: ['q'], runners: [runner], builder: backend('noop', 'v1') })).not.toThrow();
  });
});

describe('concurrent claiming', () => {
  it('keeps every queue in the round robin when several slots claim at once', async () => {
    const source = createMemoryQueue();
    for (let i = 0; i < 8; i++) source.enqueue('a', { entity: 'e', project: 'p', name: `a${i}` });
    for (let i = 0; i < 8; i++) source.enqueue('b', { entity: 'e', project: 'p', name: `b${i}` });
    const runner = createScriptedRunner({
      script: () => [
        { state: 'running', ms: 30 },
        { state: 'finished', exitCode: 0 },
      ],
    });
    const agent = createAgent({ source, runners: [runner], queues: ['a', 'b'], maxJobs: 4, defaultResource: 'scripted', env: {}, monitorIntervalMs: 20 });
    agents.push(agent);
    await agent.start();
    await waitFor(() => source.calls.filter((c) => c.op === 'finish').length === 16, { what: 'all 16 jobs' });
    expect(runner.peak).toBe(4);
    // Both queues were drained while work was being claimed in parallel: neither fell out of the rotation.
    expect(source.pending()).toBe(0);
    const names = runner.requests.map((r) => r.spec.name);
    expect(names.slice(0, 8).filter((n) => n?.startsWith('b')).length).toBeGreaterThan(0);
  });
});
