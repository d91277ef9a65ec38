import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { alive, assertBuilt, cli, nodeJob, readText, sandbox, start, status, waitFor } from './helpers.js';

beforeAll(() => assertBuilt());

describe('signals', () => {
  it('SIGTERM stops the agent cleanly: KILLED reported, the local job gone, exit 0', async () => {
    const box = await sandbox();
    const pidFile = join(box.dir, 'job.pid');
    const agent = start(['run', '-q', 'sig'], box.env);
    const enq = await cli(
      ['enqueue', '-q', 'sig', '--', ...nodeJob(`require('fs').writeFileSync(${JSON.stringify(pidFile)},String(process.pid));setTimeout(()=>{},120000)`)],
      box.env,
    );
    expect(enq.code).toBe(0);
    const jobPid = Number(await waitFor(() => readText(pidFile), { what: 'the job to start', timeoutMs: 30_000 }));
    expect(alive(jobPid)).toBe(true);

    agent.child.kill('SIGTERM');
    const result = await agent.exited;
    expect(result.code, result.stderr).toBe(0);
    expect(alive(-jobPid)).toBe(false);

    const s = await status(box.env);
    expect(s.agents).toHaveLength(1);
    expect(s.agents[0]!.status).toBe('KILLED');
    // The interrupted job is not lost: it is back on the queue for the next agent.
    const id = enq.stdout.trim();
    const waiting = s.items.filter((i) => i.state === 'queued' && (i.id === id || i.requeuedFrom === id));
    expect(waiting, JSON.stringify(s.items)).toHaveLength(1);
  });
});
