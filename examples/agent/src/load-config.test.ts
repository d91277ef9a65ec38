import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LaunchError } from '@launch/core';
import { describe, expect, it } from 'vitest';
import type { Io } from './io.js';
import { asConfigError, ConfigError, isConfigProblem, loadConfig } from './load-config.js';

async function io(): Promise<{ io: Io; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'load-config-'));
  const sink = { write: () => true };
  return { dir, io: { stdout: sink, stderr: sink, env: {}, homedir: dir, cwd: dir, onSignal: () => () => {} } };
}

describe('loadConfig', () => {
  it('turns a bad file into a ConfigError listing every bad field', async () => {
    const { io: x, dir } = await io();
    await writeFile(join(dir, 'c.yaml'), 'max_jobs: -3\nsecure_mode: maybe\n');
    const error = await loadConfig(x, join(dir, 'c.yaml'), {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/max_jobs/);
    expect((error as Error).message).toMatch(/secure_mode/);
  });

  it('applies flags over the file and reports origins', async () => {
    const { io: x, dir } = await io();
    await writeFile(join(dir, 'c.yaml'), 'max_jobs: 3\nqueues: [a]\n');
    const loaded = await loadConfig(x, join(dir, 'c.yaml'), { queues: ['b'], maxJobs: 5 });
    expect(loaded.config).toMatchObject({ queues: ['b'], max_jobs: 5 });
    expect(loaded.origins).toMatchObject({ queues: 'flag', max_jobs: 'flag' });
  });
});

describe('isConfigProblem', () => {
  it('classes config and credential set-up errors as the user config (exit 2), others not', () => {
    const err = (code: string) => new LaunchError({ code, message: code, hint: 'do this' });
    for (const code of ['config.invalid', 'config.not_found', 'wandb.no_api_key', 'wandb.queue_not_found', 'wandb.unauthorized']) {
      expect(isConfigProblem(err(code)), code).toBe(true);
    }
    for (const code of ['wandb.http', 'run.failed', 'queue.io']) expect(isConfigProblem(err(code)), code).toBe(false);
    expect(isConfigProblem(new Error('config.invalid'))).toBe(false);
    expect((asConfigError(err('config.invalid')) as Error).message).toBe('config.invalid\nhint: do this');
  });
});
