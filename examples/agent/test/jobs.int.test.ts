import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cli, nodeJob, sandbox, start, status } from './helpers.js';

beforeAll(() => assertBuilt());

describe('enqueue → run → status', () => {
  it('runs queued jobs and reports finished with exit 0, failed with stage run', async () => {
    const box = await sandbox();
    const ok = await cli(['enqueue', '--queue', 'default', '--', ...nodeJob('console.log("hello from the job")')], box.env);
    expect(ok.code).toBe(0);
    const okId = ok.stdout.trim();
    expect(okId).not.toBe('');
    const bad = await cli(['enqueue', '-q', 'default', '--priority', 'high', '--', ...nodeJob('process.exit(4)')], box.env);
    expect(bad.code).toBe(0);
    const badId = bad.stdout.trim();

    const run = await cli(['run', '--exit-when-idle'], box.env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(`[${okId}] claimed`);
    expect(run.stderr).toMatch(new RegExp(`\\[${badId}\\] failed at stage run.*exit 4`));

    const s = await status(box.env);
    const okItem = s.items.find((i) => i.id === okId);
    const badItem = s.items.find((i) => i.id === badId);
    expect(okItem).toMatchObject({ state: 'finished', exitCode: 0 });
    expect(badItem).toMatchObject({ state: 'failed', failure: { stage: 'run' } });
    expect(s.agents.length).toBe(1);

    const table = await cli(['status'], box.env);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`${okId}\\s+default\\s+medium\\s+finished`));
    expect(table.stdout).toMatch(new RegExp(`${badId}\\s+default\\s+high\\s+failed.*run:`));
  });

  it('enqueue --wait exits 0 when the job succeeds and 1 when it fails', async () => {
    const box = await sandbox();
    const agent = start(['run', '-q', 'w'], box.env);
    try {
      const good = await cli(
        ['enqueue', '-q', 'w', '--wait', '--env', 'GREETING=hi', '--', ...nodeJob('if (process.env.GREETING !== "hi") process.exit(9)')],
        box.env,
      );
      expect(good.code, good.stderr).toBe(0);
      expect(good.stderr).toContain('finished');
      const bad = await cli(['enqueue', '-q', 'w', '--wait', '--', ...nodeJob('process.exit(2)')], box.env);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/failed at stage run/);
    } finally {
      agent.child.kill('SIGTERM');
      expect((await agent.exited).code).toBe(0);
    }
  });

  it('enqueue --spec reads a YAML spec and refuses a bad one with exit 2', async () => {
    const box = await sandbox();
    const good = join(box.dir, 'job.yaml');
    await writeFile(good, `resource: local-process\noverrides:\n  entry_point: ${JSON.stringify(nodeJob('process.exit(0)'))}\n`);
    const r = await cli(['enqueue', '--spec', good], box.env);
    expect(r.code, r.stderr).toBe(0);
    const bad = join(box.dir, 'bad.yaml');
    await writeFile(bad, 'run_id: "not a valid id"\noverrides: {entry_point: [x]}\n');
    const b = await cli(['enqueue', '--spec', bad], box.env);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain('run_id');
  });

  it("enqueue without --queue uses the config's first queue, which the agent serves", async () => {
    const box = await sandbox();
    const config = join(box.dir, 'launch-config.yaml');
    await writeFile(config, 'queues: [fromcfg, other]\n');
    const enq = await cli(['enqueue', '-c', config, '--', ...nodeJob('process.exit(0)')], box.env);
    expect(enq.code, enq.stderr).toBe(0);
    const run = await cli(['run', '-c', config, '--exit-when-idle'], box.env);
    expect(run.code, run.stderr).toBe(0);
    expect((await status(box.env)).items).toMatchObject([{ id: enq.stdout.trim(), queue: 'fromcfg', state: 'finished' }]);
  });
});
