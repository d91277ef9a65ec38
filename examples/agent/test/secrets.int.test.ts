import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cli, nodeJob, readText, sandbox } from './helpers.js';

beforeAll(() => assertBuilt());

describe('secrets', () => {
  it('nothing the binary prints carries the API keys or secret env values, in any format', async () => {
    const agentKey = 'agentkey' + randomBytes(16).toString('hex');
    const specKey = 'speckey' + randomBytes(16).toString('hex');
    const token = 'tok' + randomBytes(12).toString('hex');
    const box = await sandbox({ WANDB_API_KEY: agentKey });
    // The job prints every secret it can see, in several shapes, on both streams.
    const script =
      `const e=process.env;console.log('key', e.WANDB_API_KEY, 'token', e.MY_TOKEN);` +
      `console.error(JSON.stringify({k:e.WANDB_API_KEY}));console.log('WANDB_API_KEY='+e.WANDB_API_KEY);` +
      `console.log(${JSON.stringify(agentKey)});process.exit(1)`;
    const spec = join(box.dir, 'spec.json');
    await writeFile(
      spec,
      JSON.stringify({ resource: 'local-process', _wandb_api_key: specKey, env: { MY_TOKEN: token }, overrides: { entry_point: nodeJob(script) } }),
    );
    const outputs: string[] = [];
    for (const extra of [
      ['-vv', '--log-file', join(box.dir, 'agent.log')],
      ['-v', '--log-format', 'json', '-l', '-'],
    ]) {
      const enq = await cli(['enqueue', '--spec', spec], box.env);
      expect(enq.code, enq.stderr).toBe(0);
      outputs.push(enq.stdout, enq.stderr);
      const run = await cli(['run', '--exit-when-idle', ...extra], box.env);
      expect(run.code, run.stderr).toBe(0);
      outputs.push(run.stdout, run.stderr);
    }
    outputs.push(await readText(join(box.dir, 'agent.log')));
    for (const args of [['status'], ['status', '--json'], ['config', 'check'], ['config', 'check', '--json']]) {
      const r = await cli(args, box.env);
      outputs.push(r.stdout, r.stderr);
    }
    const all = outputs.join('\n');
    // The job's output did reach us (so the check below is not vacuous)…
    expect(all).toContain('[REDACTED]');
    expect(all).toMatch(/"stream":"stdout"/);
    expect(all).toMatch(/\| key/);
    // …and no secret did.
    for (const secret of [agentKey, specKey, token]) expect(all).not.toContain(secret);
  });
});
