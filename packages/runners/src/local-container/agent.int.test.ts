import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { afterEach, describe, expect, it } from 'vitest';
import { createEmbeddedQueue, type EmbeddedQueue } from '@launch/core';
import { dockerService, serviceAvailable } from '@launch/testkit';
import { LABEL } from './labels.js';

type Line = { event: string; itemId?: string; [k: string]: unknown };

const service = dockerService();
const available = serviceAvailable('a Docker Engine (LAUNCH_TEST_DOCKER_SOCKET, LAUNCH_TEST_BASE_IMAGE)', service !== undefined);
const fixture = fileURLToPath(new URL('./agent-process.fixture.ts', import.meta.url));
const root = fileURLToPath(new URL('../../../../', import.meta.url));
const children: ChildProcess[] = [];
let queue: EmbeddedQueue | undefined;
let dir: string | undefined;

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await queue?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function startAgent(env: Record<string, string>) {
  // Debug logs are kept (not shown) so a failure can say what the agent did; stderr is bounded to its tail.
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], {
    cwd: root,
    env: { ...process.env, LAUNCH_DEBUG: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const lines: Line[] = [];
  const waiters: (() => void)[] = [];
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-16_384);
  });
  createInterface(child.stdout!).on('line', (l) => {
    try {
      lines.push(JSON.parse(l) as Line);
    } catch {
      return;
    }
    for (const w of waiters.splice(0)) w();
  });
  child.once('exit', () => {
    for (const w of waiters.splice(0)) w();
  });
  const describe = () =>
    `lines: ${JSON.stringify(lines)}\nagent ${child.exitCode !== null || child.signalCode !== null ? `exited (code ${child.exitCode}, signal ${child.signalCode})` : 'still running'}; the end of its log:\n${stderr}`;
  const until = (pred: (lines: Line[]) => boolean, timeoutMs = 45_000) =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out; ${describe()}`)), timeoutMs);
      const check = () => {
        if (pred(lines)) {
          clearTimeout(t);
          resolve();
        } else if (child.exitCode !== null || child.signalCode !== null) {
          clearTimeout(t);
          reject(new Error(`the agent exited before the awaited events; ${describe()}`));
        } else waiters.push(check);
      };
      check();
    });
  return { child, lines, until };
}

async function waitUntil(check: () => Promise<boolean>, what: string, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const spec = (image: string, script: string, resourceArgs: Record<string, unknown> = {}) => ({
  entity: 'acme',
  project: 'containers',
  resource: 'local-container',
  resource_args: { 'local-container': resourceArgs },
  docker: { docker_image: image },
  overrides: { entry_point: ['sh', '-c', script] },
});

describe.runIf(available)('local-container runner in an agent process', () => {
  it('kill -9 of the agent, then a restart: running and already-ended containers are adopted and each item reported once', async () => {
    const docker = new Docker({ socketPath: service!.socketPath });
    dir = await mkdtemp(join(tmpdir(), 'launch-container-restart-'));
    const stateDir = join(dir, 'queue');
    queue = createEmbeddedQueue({ stateDir, fsync: false });
    const agentName = `restart-${process.pid}-${Date.now()}`;
    const quick = (await queue.enqueue({ queue: 'default', spec: spec(service!.baseImage, 'sleep 1; echo quick; exit 3') })).id;
    // The slow job runs until the test creates a file: still running whenever the second agent comes up.
    const signal = await mkdtemp(join(dir, 'signal-'));
    const slow = (
      await queue.enqueue({
        queue: 'default',
        spec: spec(service!.baseImage, 'while [ ! -e /sig/go ]; do sleep 0.1; done; echo slow', { v: [`${signal}:/sig`] }),
      })
    ).id;
    const env = {
      LAUNCH_STATE_DIR: stateDir,
      LAUNCH_DOCKER_SOCKET: service!.socketPath,
      LAUNCH_LOG_DIR: join(dir, 'logs'),
      LAUNCH_AGENT_NAME: agentName,
      LAUNCH_LEASE_MS: '1000',
    };
    const since = Math.floor(Date.now() / 1000) - 1;

    const first = startAgent(env);
    await first.until((l) => [quick, slow].every((id) => l.some((x) => x.event === 'submitted' && x.itemId === id)));
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    // The quick job ends while no agent is alive.
    const state = async (itemId: string) => (await docker.listContainers({ all: true, filters: { label: [`${LABEL.itemId}=${itemId}`] } }))[0]?.State;
    await waitUntil(async () => (await state(quick)) === 'exited', 'the quick container to exit');
    expect(await state(slow)).toBe('running');

    const second = startAgent(env);
    await second.until((l) => l.some((x) => x.event === 'started'));
    expect(await state(slow)).toBe('running');
    await writeFile(join(signal, 'go'), '');
    const ended = (l: Line[], id: string) => l.filter((x) => (x.event === 'finished' || x.event === 'failed') && x.itemId === id);
    await second.until((l) => ended(l, quick).length > 0 && ended(l, slow).length > 0);
    // The outcome is recorded just after the failure event.
    await waitUntil(
      async () => (await queue!.get(quick))?.runState !== undefined && (await queue!.get(slow))?.runState !== undefined,
      'both outcomes recorded',
    );
    expect((await queue.get(quick))?.exitCode).toBe(3);
    expect((await queue.get(quick))?.runState).toBe('failed');
    expect((await queue.get(slow))?.runState).toBe('finished');
    expect(ended(second.lines, quick)).toHaveLength(1);
    expect(ended(second.lines, slow)).toHaveLength(1);
    // One container per item, ever (the engine's own create events), and none left behind.
    for (const id of [quick, slow]) {
      const stream = (await docker.getEvents({
        since,
        until: Math.ceil(Date.now() / 1000) + 1,
        filters: { type: ['container'], event: ['create'], label: [`${LABEL.itemId}=${id}`] },
      })) as unknown as NodeJS.ReadableStream;
      let text = '';
      for await (const chunk of stream) text += String(chunk);
      expect(
        text.split('\n').filter((x) => x.trim()),
        id,
      ).toHaveLength(1);
      // Removed once the agent recorded the outcome.
      await waitUntil(async () => (await state(id)) === undefined, `the container of ${id} to be removed`);
    }
    second.child.kill('SIGTERM');
  }, 120_000);

  it('with orphanGuard, kill -9 of the agent stops and removes its containers', async () => {
    const docker = new Docker({ socketPath: service!.socketPath });
    dir = await mkdtemp(join(tmpdir(), 'launch-container-guard-'));
    const stateDir = join(dir, 'queue');
    queue = createEmbeddedQueue({ stateDir, fsync: false });
    const item = (await queue.enqueue({ queue: 'default', spec: spec(service!.baseImage, 'sleep 300') })).id;
    const agent = startAgent({
      LAUNCH_STATE_DIR: stateDir,
      LAUNCH_DOCKER_SOCKET: service!.socketPath,
      LAUNCH_LOG_DIR: join(dir, 'logs'),
      LAUNCH_AGENT_NAME: `guard-${process.pid}-${Date.now()}`,
      LAUNCH_ORPHAN_GUARD: '1',
    });
    await agent.until((l) => l.some((x) => x.event === 'submitted' && x.itemId === item));
    const list = () => docker.listContainers({ all: true, filters: { label: [`${LABEL.itemId}=${item}`] } });
    await waitUntil(async () => (await list())[0]?.State === 'running', 'the container to run');
    agent.child.kill('SIGKILL');
    await waitUntil(async () => (await list()).length === 0, 'the watchdog to stop and remove the container');
  }, 120_000);
});
