import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { alive, assertBuilt, cli, nodeJob, readText, sandbox, start, status, waitFor } from './helpers.js';

beforeAll(() => assertBuilt());

/**
 * A job whose side effects count its runs: "start <pid>" on entry, "done" when it completes. The
 * first run sleeps long (it must die with its agent long before it would finish); later runs are quick.
 */
function countingJob(file: string): string[] {
  const f = JSON.stringify(file);
  return nodeJob(
    `const fs=require('fs');const before=fs.existsSync(${f})?fs.readFileSync(${f},'utf8'):'';` +
      `fs.appendFileSync(${f},'start '+process.pid+'\\n');` +
      `setTimeout(()=>fs.appendFileSync(${f},'done\\n'),before.includes('start')?300:30000)`,
  );
}

const count = (text: string, word: string) => text.split('\n').filter((l) => l.startsWith(word)).length;

describe('crash safety', () => {
  it('an item whose agent is killed with SIGKILL is neither lost nor run twice', async () => {
    // A short lease so the claim of the dead agent comes back quickly.
    const box = await sandbox({ LAUNCH_LEASE_MS: '1500' });
    const side = join(box.dir, 'side-effects.txt');
    const first = start(['run', '-q', 'crash'], box.env);
    const enq = await cli(['enqueue', '-q', 'crash', '--', ...countingJob(side)], box.env);
    expect(enq.code, enq.stderr).toBe(0);
    const id = enq.stdout.trim();

    const firstPid = Number((await waitFor(async () => /^start (\d+)$/m.exec(await readText(side)), { what: 'the job to start', timeoutMs: 30_000 }))[1]);
    first.child.kill('SIGKILL');
    await first.exited;
    try {
      // The job runs in its own process group (pgid = pid); the whole group must die with the agent.
      await waitFor(() => !alive(-firstPid), { what: 'the first run to be killed with its agent', timeoutMs: 10_000 });
    } finally {
      // Leave no orphan behind for the next tests, whatever the outcome.
      if (alive(-firstPid)) process.kill(-firstPid, 'SIGKILL');
    }

    const second = await cli(['run', '-q', 'crash', '--exit-when-idle'], box.env, 90_000);
    expect(second.code, second.stderr).toBe(0);

    const text = await readText(side);
    expect(count(text, 'done'), text).toBe(1);
    expect(count(text, 'start'), text).toBe(2);
    const item = (await status(box.env)).items.find((i) => i.id === id);
    expect(item).toMatchObject({ state: 'finished', exitCode: 0, attempts: 2 });
  });
});
