import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createEmbeddedQueue, type EmbeddedQueue } from '@launch/core';
import { startKubeTestServer, type KubeTestServer } from '@launch/testkit';
import { afterEach, expect, it } from 'vitest';
import { LABEL } from './labels.js';

type Line = { event: string; itemId?: string; [k: string]: unknown };

const fixture = fileURLToPath(new URL('./agent-process.fixture.ts', import.meta.url));
const root = fileURLToPath(new URL('../../../../', import.meta.url));
const children: ChildProcess[] = [];
let server: KubeTestServer | undefined;
let queue: EmbeddedQueue | undefined;
let dir: string | undefined;

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await queue?.close();
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function startAgent(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines: Line[] = [];
  const waiters: (() => void)[] = [];
  createInterface(child.stdout!).on('line', (l) => {
    try {
      lines.push(JSON.parse(l) as Line);
    } catch {
      return;
    }
    for (const w of waiters.splice(0)) w();
  });
  const until = (pred: (lines: Line[]) => boolean, timeoutMs = 30_000) =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out; lines: ${JSON.stringify(lines)}`)), timeoutMs);
      const check = () => {
        if (pred(lines)) {
          clearTimeout(t);
          resolve();
        } else waiters.push(check);
      };
      check();
    });
  return { child, lines, until };
}

it('kill -9 of the agent while jobs run, then a restart: every job is adopted and reported once, none created twice', async () => {
  server = await startKubeTestServer({ kubelet: { stepDelayMs: 5 }, timeScale: 0.01 });
  server.kubelet.script({ label: { [LABEL.monitor]: 'true' } }, [{ running: true }, { wait: 4000 }, { log: 'done' }, { succeed: true }]);
  dir = await mkdtemp(join(tmpdir(), 'launch-k8s-restart-'));
  const stateDir = join(dir, 'queue');
  queue = createEmbeddedQueue({ stateDir, fsync: false });
  const ids: string[] = [];
  for (let i = 0; i < 3; i++)
    ids.push((await queue.enqueue({ queue: 'gpu', spec: { entity: 'acme', project: 'restart', docker: { docker_image: 'img:1' } } })).id);
  const env = { LAUNCH_STATE_DIR: stateDir, LAUNCH_KUBECONFIG: server.kubeconfigPath, LAUNCH_AGENT_NAME: 'restart-agent', LAUNCH_LEASE_MS: '1000' };

  const first = startAgent(env);
  await first.until((l) => ids.every((id) => l.some((x) => x.event === 'submitted' && x.itemId === id)));
  // Freeze the pods until the agent is dead, however slowly a loaded machine got here: no job may end first.
  server.kubelet.pause();
  first.child.kill('SIGKILL');
  await new Promise((r) => first.child.once('exit', r));
  server.kubelet.resume();
  expect(first.lines.some((l) => l.event === 'finished')).toBe(false);

  const second = startAgent(env);
  await second.until((l) => ids.every((id) => l.some((x) => (x.event === 'finished' || x.event === 'failed') && x.itemId === id)));
  for (const id of ids) {
    const record = await queue.get(id);
    expect(record?.state, id).toBe('finished');
    expect(record?.runState, id).toBe('finished');
  }
  // One Job per item, ever.
  const posts = server.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/jobs'));
  expect(posts).toHaveLength(3);
  // The restarted agent followed the original Jobs: adopted at start-up, and when the queue handed an item back
  // (the dead agent's lease expired), run() returned the existing Job for it instead of creating one.
  const original = new Map(first.lines.filter((l) => l.event === 'submitted').map((l) => [l.itemId, l.backendId]));
  for (const l of second.lines.filter((x) => x.event === 'submitted')) expect(l.backendId).toBe(original.get(l.itemId));
  for (const id of ids)
    expect(
      second.lines.some((l) => l.event === 'finished' && l.itemId === id && l.state === 'finished'),
      id,
    ).toBe(true);
  // Each item is reported exactly once: an adopted item that the queue hands back (the dead agent's lease expired)
  // is taken over by the run already being followed, never followed a second time.
  for (const id of ids) {
    const ends = second.lines.filter((l) => (l.event === 'finished' || l.event === 'failed') && l.itemId === id);
    expect(ends, id).toHaveLength(1);
  }
  second.child.kill('SIGTERM');
}, 90_000);

it("an agent down longer than the Jobs' TTL: the finalizer keeps each outcome, the restarted agent reports it once and creates nothing", async () => {
  server = await startKubeTestServer({ kubelet: { stepDelayMs: 5 }, timeScale: 0.01 });
  server.kubelet.script({ label: { [LABEL.monitor]: 'true' } }, [{ running: true }, { wait: 500 }, { log: 'done' }, { succeed: true }]);
  dir = await mkdtemp(join(tmpdir(), 'launch-k8s-ttl-'));
  const stateDir = join(dir, 'queue');
  queue = createEmbeddedQueue({ stateDir, fsync: false });
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push((await queue.enqueue({ queue: 'gpu', spec: { entity: 'acme', project: 'ttl', docker: { docker_image: 'img:1' } } })).id);
  const env = { LAUNCH_STATE_DIR: stateDir, LAUNCH_KUBECONFIG: server.kubeconfigPath, LAUNCH_AGENT_NAME: 'ttl-agent', LAUNCH_LEASE_MS: '1000' };

  const first = startAgent(env);
  await first.until((l) => ids.every((id) => l.some((x) => x.event === 'submitted' && x.itemId === id)));
  // Freeze the pods until the agent is dead, however slowly a loaded machine got here: every job ends while it is down.
  server.kubelet.pause();
  first.child.kill('SIGKILL');
  await new Promise((r) => first.child.once('exit', r));
  server.kubelet.resume();
  expect(first.lines.some((l) => l.event === 'finished' || l.event === 'failed')).toBe(false);

  // While no agent runs, every Job finishes and its TTL (60 s, scaled to 0.6 s) runs out: the API server marks it
  // for deletion, and only the agent's finalizer keeps it. Wait until that is so for all three.
  const jobs = () => server!.listObjects('/apis/batch/v1/namespaces/default/jobs') as Array<Record<string, any>>;
  const deadline = Date.now() + 30_000;
  while (
    !(
      jobs().length === 3 &&
      jobs().every((j) => j.metadata.deletionTimestamp && (j.status?.conditions ?? []).some((c: { type: string }) => c.type === 'Complete'))
    )
  ) {
    if (Date.now() > deadline)
      throw new Error(`jobs did not finish and expire: ${JSON.stringify(jobs().map((j) => [j.metadata.name, j.metadata.deletionTimestamp, j.status]))}`);
    await new Promise((r) => setTimeout(r, 20));
  }

  const second = startAgent(env);
  await second.until((l) => ids.every((id) => l.some((x) => (x.event === 'finished' || x.event === 'failed') && x.itemId === id)));
  for (const id of ids) {
    const record = await queue.get(id);
    expect(record?.state, id).toBe('finished');
    expect(record?.runState, id).toBe('finished');
    const ends = second.lines.filter((l) => (l.event === 'finished' || l.event === 'failed') && l.itemId === id);
    expect(ends, id).toHaveLength(1);
  }
  expect(server.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/jobs'))).toHaveLength(3);
  // Reported: the finalizers are gone, and with them the Jobs.
  const gone = Date.now() + 15_000;
  while (jobs().length > 0) {
    if (Date.now() > gone) throw new Error(`jobs still there after the report: ${JSON.stringify(jobs().map((j) => [j.metadata.name, j.metadata.finalizers]))}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  second.child.kill('SIGTERM');
}, 90_000);
