import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cli, sandbox } from './helpers.js';

beforeAll(() => assertBuilt());

describe('demo', () => {
  it('runs the demo jobs and exits 0 with a summary', async () => {
    const box = await sandbox();
    const r = await cli(['demo'], box.env, 90_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('demo OK');
    expect(r.stderr).toMatch(/progress .*finished/);
    expect(r.stderr).toMatch(/fail-on-purpose .*failed/);
    expect(r.stderr).toContain('training step 5/5');
  });
});
