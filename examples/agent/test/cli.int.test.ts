import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cli, sandbox, type Sandbox } from './helpers.js';

let box: Sandbox;
beforeAll(async () => {
  assertBuilt();
  box = await sandbox();
});

describe('launch-agent usage', () => {
  const helps = [
    ['--help'],
    ['run', '--help'],
    ['-h'],
    ['enqueue', '--help'],
    ['status', '--help'],
    ['config', '--help'],
    ['config', 'check', '--help'],
    ['config', 'schema', '--help'],
    ['demo', '--help'],
  ];
  it.each(helps.map((a) => [a.join(' '), a] as const))('launch-agent %s exits 0 with usage on stdout', async (_, args) => {
    const r = await cli(args, box.env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: launch-agent/);
  });

  const bad = [
    ['--bogus'],
    ['run', '--bogus'],
    ['enqueue', '--bogus', '--', 'true'],
    ['status', '--bogus'],
    ['config', 'check', '--bogus'],
    ['demo', '--bogus'],
    ['nope'],
    ['config', 'nope'],
    ['run', '-j', 'many'],
    ['run', '--log-format', 'xml'],
  ];
  it.each(bad.map((a) => [a.join(' '), a] as const))('launch-agent %s exits 2 with a pointer to --help', async (_, args) => {
    const r = await cli(args, box.env);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--help/);
  });
});

describe('launch-agent config', () => {
  it('check exits 2 on a bad config and names every bad field', async () => {
    const path = join(box.dir, 'bad.yaml');
    await writeFile(path, 'max_jobs: -5\nverbosity: 9\nbuilder:\n  type: podman\nqueus: [a]\n');
    const r = await cli(['config', 'check', '-c', path], box.env);
    expect(r.code).toBe(2);
    for (const field of ['max_jobs', 'verbosity', 'builder.type', 'queus']) expect(r.stderr).toContain(field);
  });

  it('a bad config stops run with exit 2 too', async () => {
    const path = join(box.dir, 'bad2.yaml');
    await writeFile(path, 'stopped_run_timeout: soon\n');
    const r = await cli(['run', '-c', path, '--exit-when-idle'], box.env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('stopped_run_timeout');
  });

  it('a missing --config file is exit 2', async () => {
    const r = await cli(['config', 'check', '-c', join(box.dir, 'missing.yaml')], box.env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('missing.yaml');
  });

  it('check prints the effective config with origins and the API key redacted', async () => {
    const path = join(box.dir, 'good.yaml');
    const key = 'cfgkey' + 'x'.repeat(34);
    await writeFile(path, `max_jobs: 3\nqueues: [a]\napi_key: ${key}\n`);
    const r = await cli(['config', 'check', '-c', path, '-q', 'b'], { ...box.env, WANDB_ENTITY: 'team' });
    expect(r.code).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(key);
    expect(r.stdout).toMatch(/max_jobs\s+3\s+file/);
    expect(r.stdout).toMatch(/queues\s+\["b"\]\s+flag/);
    expect(r.stdout).toMatch(/entity\s+team\s+env/);
    expect(r.stdout).toMatch(/api_key\s+\[REDACTED\]\s+file/);

    const j = await cli(['config', 'check', '-c', path, '--json'], box.env);
    expect(j.code).toBe(0);
    const parsed = JSON.parse(j.stdout) as { config: Record<string, unknown>; origins: Record<string, string> };
    expect(parsed.config.max_jobs).toBe(3);
    expect(parsed.config.api_key).toBe('[REDACTED]');
    expect(parsed.origins.max_jobs).toBe('file');
  });

  it('schema prints a JSON Schema naming the config keys', async () => {
    const r = await cli(['config', 'schema'], box.env);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout) as { properties: Record<string, unknown> };
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(['max_jobs', 'queues', 'builder', 'state_dir']));
  });
});
