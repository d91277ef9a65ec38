import { spawn } from 'node:child_process';
import { waitFor } from '@launch/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { createOrphanGuard } from './orphan-guard.js';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
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

const started: number[] = [];
afterEach(() => {
  for (const pid of started.splice(0)) if (alive(-pid)) process.kill(-pid, 'SIGKILL');
});

describe('orphan guard', () => {
  it('kills the tracked process groups when the agent side of the pipe closes, and only those', async () => {
    const tracked = sleeper();
    const released = sleeper();
    started.push(tracked, released);
    const guard = createOrphanGuard({ graceMs: 2000 });
    guard.track(tracked);
    guard.track(released);
    guard.untrack(released);
    guard.close();
    await waitFor(() => !alive(-tracked), { what: 'the tracked group to be killed', timeoutMs: 10_000 });
    expect(alive(-released)).toBe(true);
  });
});
