import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@launch/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { createProcessGroupGuard } from './orphan-guard.js';

const fixture = fileURLToPath(new URL('./agent-process.fixture.ts', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));

/** Whether any process of the group exists (EPERM: one exists that we may not signal). */
const groupAlive = (pgid: number) => {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** A sleeping job in its own process group, as the local-process runner starts them. */
function sleeper(): number {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { detached: true, stdio: 'ignore' });
  child.unref();
  return child.pid!;
}

const groups: number[] = [];
const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const g of groups.splice(0)) if (groupAlive(g)) process.kill(-g, 'SIGKILL');
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

/** Starts the embedder fixture: an agent process running one `sleep 300` job; resolves with the job's pgid. */
async function agentWithJob(orphanGuard: boolean): Promise<{ child: ChildProcess; pgid: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'launch-orphan-'));
  dirs.push(dir);
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], {
    cwd: repoRoot,
    env: { ...process.env, LAUNCH_STATE_DIR: join(dir, 'state'), LAUNCH_LOG_DIR: join(dir, 'logs'), LAUNCH_ORPHAN_GUARD: orphanGuard ? '1' : '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const events = () =>
    out
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { event: string; backendId?: string; state?: string });
  const pgid = await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`the agent process exited ${child.exitCode}: ${err}`);
      const running = events().some((e) => e.event === 'state' && e.state === 'running');
      const submitted = events().find((e) => e.event === 'submitted');
      return running && submitted ? Number(submitted.backendId) : undefined;
    },
    { what: 'the agent process to start its job', timeoutMs: 30_000 },
  );
  groups.push(pgid);
  expect(groupAlive(pgid)).toBe(true);
  return { child, pgid };
}

const killHard = async (child: ChildProcess) => {
  child.kill('SIGKILL');
  await waitFor(() => child.exitCode !== null || child.signalCode !== null, { what: 'the agent process to die' });
};

describe('orphan guard (local-process runner)', () => {
  it('kills the tracked process groups when the agent side of the pipe closes, and only those', async () => {
    const tracked = sleeper();
    const released = sleeper();
    groups.push(tracked, released);
    const guard = createProcessGroupGuard({ graceMs: 2000 });
    guard.track(tracked);
    guard.track(released);
    guard.untrack(released);
    guard.close();
    await waitFor(() => !groupAlive(tracked), { what: 'the tracked group to be killed', timeoutMs: 10_000 });
    expect(groupAlive(released)).toBe(true);
  });

  it("an embedder that sets orphanGuard gets the guarantee: agent killed with -9, its job's process group is gone", async () => {
    // Both agents are killed the same way; only the guarded one takes its job with it.
    const [guarded, unguarded] = await Promise.all([agentWithJob(true), agentWithJob(false)]);
    await Promise.all([killHard(guarded.child), killHard(unguarded.child)]);
    await waitFor(() => !groupAlive(guarded.pgid), { what: "the guarded agent's job group to be killed", timeoutMs: 15_000 });
    // The control: without the option, kill -9 leaves the job running (no exit handler runs).
    expect(groupAlive(unguarded.pgid)).toBe(true);
  });
});
