import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerService, serviceAvailable } from '@launch/testkit';
import { LaunchError, type RunRequest, type RunStatus, type SubmittedRun } from '@launch/core';
import { containerName, LABEL } from './labels.js';
import { createLocalContainerRunner, type LocalContainerRunner } from './runner.js';

const service = dockerService();
const available = serviceAvailable('a Docker Engine (LAUNCH_TEST_DOCKER_SOCKET, LAUNCH_TEST_BASE_IMAGE)', service !== undefined);
const ctx = { logger: { debug() {}, info() {}, warn() {}, error() {} } };

describe.runIf(available)('local-container runner on a real Docker Engine', () => {
  let dir: string;
  let docker: Docker;
  const runners: LocalContainerRunner[] = [];
  const runs: SubmittedRun[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'launch-container-'));
    docker = new Docker({ socketPath: service!.socketPath });
  });

  afterAll(async () => {
    await Promise.all(runs.map((r) => r.cancel().catch(() => undefined)));
    await Promise.all(runners.map((r) => r.close()));
    await rm(dir, { recursive: true, force: true });
  });

  const newRunner = (extra: Partial<Parameters<typeof createLocalContainerRunner>[0]> = {}) => {
    const runner = createLocalContainerRunner({ logDir: join(dir, 'logs'), socketPath: service!.socketPath, killGracePeriodMs: 1_000, ...extra });
    runners.push(runner);
    return runner;
  };

  const request = (script: string, overrides: Partial<RunRequest> = {}): RunRequest => {
    const id = randomBytes(6).toString('hex');
    return {
      runId: `run-${id}`,
      itemId: `item-${id}`,
      queue: 'default',
      agentName: 'int-agent',
      spec: { resource: 'local-container' },
      image: service!.baseImage,
      entryPoint: ['sh', '-c', script, 'sh'],
      args: [],
      env: {},
      resourceArgs: {},
      ...overrides,
    };
  };

  async function submit(runner: LocalContainerRunner, req: RunRequest): Promise<SubmittedRun> {
    const run = await runner.run(req, ctx);
    runs.push(run);
    return run;
  }

  const capabilitiesOf = (runner: LocalContainerRunner) => runner.capabilities;
  const containersOf = (itemId: string) => docker.listContainers({ all: true, filters: { label: [`${LABEL.itemId}=${itemId}`] } });

  function rejection(p: Promise<unknown>): Promise<LaunchError> {
    return p.then(
      () => {
        throw new Error('expected a rejection');
      },
      (e: unknown) => {
        expect(LaunchError.isInstance(e), String(e)).toBe(true);
        return e as LaunchError;
      },
    );
  }

  it('runs the job in a container, never on the host: its own pid and mount namespaces, pid 1 inside', async () => {
    const runner = newRunner();
    const run = await submit(runner, request('echo "pid=$$"; readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt', { spec: { resource: 'local' } }));
    const status = await run.wait();
    const out = await run.logs();
    expect(status.state, out).toBe('finished');
    expect(out).toContain('pid=1\n');
    const [pidNs, mntNs] = out.split('\n').filter((l) => l.startsWith('pid:') || l.startsWith('mnt:'));
    expect(pidNs).toMatch(/^pid:\[\d+\]$/);
    expect(mntNs).toMatch(/^mnt:\[\d+\]$/);
    expect(pidNs).not.toBe(await readlink('/proc/self/ns/pid'));
    expect(mntNs).not.toBe(await readlink('/proc/self/ns/mnt'));
  });

  it('env from the request, resource_args env (list and dict) and env-file, and volumes reach the container', async () => {
    const runner = newRunner();
    const shared = await mkdtemp(join(dir, 'vol-'));
    const envFile = join(dir, 'job.env');
    await writeFile(envFile, '# comment\nFROM_FILE=file-value\nOVERRIDDEN=from-file\n');
    const req = request('echo "$WANDB_RUN_ID|$FROM_LIST|$FROM_DICT|$FROM_FILE|$OVERRIDDEN"; echo written > /data/out.txt; cat /ro/in.txt', {
      env: { WANDB_RUN_ID: 'wandb-run-1', OVERRIDDEN: 'from-request' },
      resourceArgs: {
        e: ['FROM_LIST=list-value', 'OVERRIDDEN=from-e'],
        'env-file': envFile,
        v: [`${shared}:/data`, `${envFile}:/ro/in.txt:ro`],
      },
    });
    const run = await submit(runner, req);
    const status = await run.wait();
    expect(status.state, JSON.stringify(status)).toBe('finished');
    const out = await run.logs();
    expect(out).toContain('wandb-run-1|list-value||file-value|from-e');
    expect(out).toContain('FROM_FILE=file-value');
    expect(await readFile(join(shared, 'out.txt'), 'utf8')).toBe('written\n');

    const dict = await submit(runner, request('echo "$FROM_DICT"', { resourceArgs: { env: { FROM_DICT: 'dict-value' } } }));
    await dict.wait();
    expect(await dict.logs()).toContain('dict-value');
  });

  it("mounts a W&B job's code where the request says, beside the resource_args volumes, and runs in its working directory", async () => {
    const runner = newRunner();
    const code = await mkdtemp(join(dir, 'code-'));
    await writeFile(join(code, 'train.sh'), 'echo "trained in $(pwd)"; cat data.txt; echo result > out.txt\n');
    await writeFile(join(code, 'data.txt'), 'from the code\n');
    const shared = await mkdtemp(join(dir, 'vol-'));
    const run = await submit(
      runner,
      request('', {
        entryPoint: ['sh', 'train.sh'],
        code: { dir: code, mountPath: '/mnt/wandb' },
        workingDir: '/mnt/wandb',
        resourceArgs: { v: [`${shared}:/data`] },
      }),
    );
    const status = await run.wait();
    const out = await run.logs();
    expect(status.state, out).toBe('finished');
    expect(out).toContain('trained in /mnt/wandb\nfrom the code\n');
    // The run wrote beside its code (the agent gives each run its own copy).
    expect(await readFile(join(code, 'out.txt'), 'utf8')).toBe('result\n');
    expect(capabilitiesOf(runner).mountsCode).toBe(true);
  });

  it('labels the container with item, run and agent, names it from the item, and removes it at the end (rm default)', async () => {
    const runner = newRunner();
    const req = request('sleep 30');
    const run = await submit(runner, req);
    const [info] = await containersOf(req.itemId);
    expect(info?.Names).toEqual([`/${containerName(req.itemId)}`]);
    expect(info?.Labels).toMatchObject({ [LABEL.itemId]: req.itemId, [LABEL.runId]: req.runId, [LABEL.agent]: 'int-agent' });
    expect(run.id).toBe(info?.Id);
    await run.cancel();
    expect((await run.wait()).state).toBe('stopped');
    // The ended container keeps the outcome until the agent recorded it.
    expect((await containersOf(req.itemId))[0]?.State).toBe('exited');
    await run.reported!();
    expect(await containersOf(req.itemId)).toEqual([]);
  });

  it('rm: false keeps the ended container under another name, so its item can run again', async () => {
    const runner = newRunner();
    const req = request('exit 0', { resourceArgs: { rm: false } });
    const run = await submit(runner, req);
    expect((await run.wait()).state).toBe('finished');
    await run.reported!();
    const kept = await containersOf(req.itemId);
    expect(kept).toHaveLength(1);
    expect(kept[0]!.Names[0]).toMatch(new RegExp(`^/${containerName(req.itemId)}-ended-`));
    await docker.getContainer(kept[0]!.Id).remove({ force: true });
  });

  it('cancel stops a sleeping container (SIGTERM, then SIGKILL after the grace period) and the engine agrees', async () => {
    const runner = newRunner();
    const req = request('sleep 300', { resourceArgs: { rm: false } });
    const run = await submit(runner, req);
    const seen: RunStatus[] = [];
    run.onStatus((s) => seen.push(s));
    await Promise.all([run.cancel(), run.cancel()]);
    const status = await run.wait();
    expect(status.state).toBe('stopped');
    // PID 1 ignores SIGTERM without a handler, so only the SIGKILL after the grace period stops it.
    expect(status.exitCode).toBe(137);
    expect(seen.some((s) => s.messages.some((m) => m.includes('sent SIGKILL')))).toBe(true);
    const [info] = await containersOf(req.itemId);
    expect(info?.State).toBe('exited');
    await docker.getContainer(info!.Id).remove({ force: true });
  });

  it('refuses an unknown resource_args key, naming it and the supported keys, and creates nothing', async () => {
    const runner = newRunner();
    const req = request('exit 0', { resourceArgs: { memroy: '1g', privileged: true, env: ['NOVALUE'], 'shm-size': 'lots' } });
    const error = await rejection(runner.run(req, ctx));
    expect(error.stage).toBe('run');
    expect(error.code).toBe('run.invalid_resource_args');
    expect(error.message).toContain('resource_args.local-container.memroy');
    expect(error.message).toContain('did you mean `memory`');
    expect(error.message).toContain('shm-size');
    expect(error.message).toContain('resource_args.local-container.privileged');
    expect(error.message).toContain('resource_args.local-container.shm-size');
    expect(error.message).toContain('resource_args.local-container.env');
    expect(await containersOf(req.itemId)).toEqual([]);
  });

  it('two run() calls for one item, from two runner instances, make one container', async () => {
    const a = newRunner();
    const b = newRunner();
    const req = request('sleep 2; echo once; exit 5');
    const [r1, r2] = await Promise.all([submit(a, req), submit(b, { ...req })]);
    expect(r1.id).toBe(r2.id);
    const events = await createEvents(docker, req.itemId, Math.floor(Date.now() / 1000) - 60);
    expect(events).toBe(1);
    const [s1, s2] = await Promise.all([r1.wait(), r2.wait()]);
    expect([s1.state, s2.state]).toEqual(['failed', 'failed']);
    expect([s1.exitCode, s2.exitCode]).toEqual([5, 5]);
    // Both tracked the same container: run() of the same runner instance returns the run it already follows.
    const again = request('exit 0');
    const [x, y] = await Promise.all([submit(a, again), submit(a, again)]);
    expect(x).toBe(y);
    await x.wait();
  });

  it('adopts its containers after a new runner instance: running ones followed to the end, ended ones reported once', async () => {
    const agentName = `adopt-${randomBytes(3).toString('hex')}`;
    const first = newRunner({ agentName });
    const quick = request('echo quick; exit 3');
    const slow = request('sleep 2; echo slow-done; exit 0');
    const other = request('sleep 30', { agentName: 'someone-else' });
    // A runner whose process "died": its containers keep running, nothing follows them any more.
    await first.run(quick, ctx).then((r) => (r as unknown as { detach(): void }).detach());
    await first.run(slow, ctx).then((r) => (r as unknown as { detach(): void }).detach());
    const foreign = await submit(newRunner(), other);
    await waitUntil(async () => (await containersOf(quick.itemId))[0]?.State === 'exited');

    const second = newRunner({ agentName });
    const adopted = await second.adopt(agentName, ctx);
    expect(adopted.map((r) => r.itemId).sort()).toEqual([quick.itemId, slow.itemId].sort());
    const byItem = new Map(adopted.map((r) => [r.itemId, r]));
    expect(byItem.get(quick.itemId)?.queue).toBe('default');
    expect(byItem.get(quick.itemId)?.spec).toEqual({ resource: 'local-container' });
    const [q, s] = await Promise.all([byItem.get(quick.itemId)!.wait(), byItem.get(slow.itemId)!.wait()]);
    expect(q).toMatchObject({ state: 'failed', exitCode: 3 });
    expect(s).toMatchObject({ state: 'finished', exitCode: 0 });
    expect(await byItem.get(slow.itemId)!.logs()).toContain('slow-done');
    // Until the agent recorded the outcomes, another restart would find them again; afterwards nothing is left.
    const third = newRunner({ agentName });
    const again = await third.adopt(agentName, ctx);
    expect(again.map((r) => r.itemId).sort()).toEqual([quick.itemId, slow.itemId].sort());
    expect((await Promise.all(again.map((r) => r.wait()))).map((s) => s.exitCode).sort()).toEqual([0, 3]);
    await Promise.all(adopted.map((r) => r.reported!()));
    expect(await newRunner({ agentName }).adopt(agentName, ctx)).toEqual([]);
    await foreign.cancel();
  });

  it('diagnoses a container killed for memory as OOMKilled (State.OOMKilled)', async () => {
    const run = await submit(
      newRunner(),
      request('x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo ${#x}', { resourceArgs: { m: '16m', 'memory-swap': '16m' } }),
    );
    const status = await run.wait();
    expect(status.state).toBe('failed');
    expect(status.exitCode).toBe(137);
    expect(status.diagnosis?.category).toBe('OOMKilled');
    expect(status.diagnosis?.hint).toContain('memory');
  });

  it('attachOnly follows the existing container and never creates one', async () => {
    const runner = newRunner();
    const lost = request('exit 0', { attachOnly: true });
    const error = await rejection(runner.run(lost, ctx));
    expect(error.code).toBe('run.outcome_lost');
    expect(await containersOf(lost.itemId)).toEqual([]);

    const req = request('sleep 1; exit 6');
    const original = await newRunner().run(req, ctx);
    (original as unknown as { detach(): void }).detach();
    const attached = await submit(runner, { ...req, attachOnly: true });
    expect(attached.id).toBe(original.id);
    expect(await attached.wait()).toMatchObject({ state: 'failed', exitCode: 6 });
  });

  it('diagnoses a missing image as ImagePullError naming the image', async () => {
    const image = `localhost/launch-missing-${randomBytes(3).toString('hex')}:nope`;
    for (const pull of ['never', 'missing'] as const) {
      const req = request('exit 0', { image });
      const error = await rejection(newRunner({ pull }).run(req, ctx));
      expect(error.category).toBe('ImagePullError');
      expect(error.code).toBe('run.image_missing');
      expect(error.message).toContain(image);
      expect(error.hint).toMatch(/\S/);
      expect(await containersOf(req.itemId)).toEqual([]);
    }
  });

  it('an entry point missing from the image fails the run with a diagnosis', async () => {
    const run = await submit(newRunner(), request('', { entryPoint: ['/no/such/program'] }));
    const status = await run.wait();
    expect(status.state).toBe('failed');
    expect(status.diagnosis?.category).toBe('InvalidSpec');
    expect(status.diagnosis?.hint).toContain('entry point');
    expect(status.messages.join(' ')).toContain('/no/such/program');
  });

  it('fails run() with a clear error naming the socket when the engine is not reachable', async () => {
    const socketPath = join(dir, 'no-engine.sock');
    const runner = newRunner({ socketPath });
    const error = await rejection(runner.run(request('exit 0'), ctx));
    expect(error.code).toBe('run.engine_unreachable');
    expect(error.message).toContain(socketPath);
    expect(error.retryable).toBe(true);
    await expect(runner.verify()).rejects.toThrow(socketPath);
    expect((await newRunner().verify()).version).toMatch(/\d/);
  });

  it('a failed job keeps its log tail; the log file holds stdout and stderr', async () => {
    const run = await submit(newRunner(), request('echo to-out; echo to-err >&2; exit 7'));
    const streamed: string[] = [];
    run.onLog?.((c) => streamed.push(`${c.stream}:${c.text}`));
    const status = await run.wait();
    expect(status).toMatchObject({ state: 'failed', exitCode: 7 });
    expect(status.diagnosis?.category).toBe('NonZeroExit');
    expect(status.logTail).toContain('to-out');
    expect(status.logTail).toContain('to-err');
    const file = await readFile(join(dir, 'logs', `${run.itemId}.log`), 'utf8');
    expect(file).toContain('to-out');
    expect(file).toContain('to-err');
  });
});

/** Container `create` events for an item since `since` (seconds): the engine's own count of creations. */
async function createEvents(docker: Docker, itemId: string, since: number): Promise<number> {
  const stream = (await docker.getEvents({
    since,
    until: Math.ceil(Date.now() / 1000) + 1,
    filters: { type: ['container'], event: ['create'], label: [`${LABEL.itemId}=${itemId}`] },
  })) as unknown as NodeJS.ReadableStream;
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text.split('\n').filter((l) => l.trim()).length;
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 100));
  }
}
