import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LaunchError, LaunchValidationError } from '../../errors.js';
import { createEmbeddedQueue } from './queue.js';
import { tempStateDir } from './test-helpers.js';
import type { EmbeddedQueue } from './types.js';

const config = {
  resource: 'local-container',
  resource_args: { 'local-container': { gpus: '{{gpus}}', 'shm-size': '{{shm}}g', env: ['RUN=${run_id}'] } },
  template_variables: {
    gpus: { schema: { type: 'integer', minimum: 0, maximum: 2, default: 0 } },
    shm: { schema: { type: 'string', enum: ['1', '8'] } },
  },
};
const spec = { entity: 'e', project: 'p', docker: { docker_image: 'img:1' } };

describe('embedded queue: queue configs', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let queue: EmbeddedQueue;

  beforeEach(async () => {
    ({ dir, cleanup } = await tempStateDir());
    queue = createEmbeddedQueue({ stateDir: dir, pollIntervalMs: 60_000 });
  });
  afterEach(async () => {
    await queue.close();
    await cleanup();
  });

  it('stores, lists, replaces and deletes configs under the state directory, atomically', async () => {
    expect(await queue.getQueueConfig('box')).toBeUndefined();
    await queue.setQueueConfig('box', config);
    await expect(queue.setQueueConfig('box', config)).rejects.toMatchObject({ code: 'queue_config.exists' });
    // Another instance on the same directory sees it.
    const other = createEmbeddedQueue({ stateDir: dir, pollIntervalMs: 60_000 });
    expect(await other.getQueueConfig('box')).toEqual(config);
    await other.close();
    await queue.setQueueConfig('box', { resource: 'local-process' }, 'upsert');
    await queue.setQueueConfig('a/b', { resource: 'kubernetes' });
    expect(await queue.listQueueConfigs()).toEqual([
      { queue: 'a/b', config: { resource: 'kubernetes' } },
      { queue: 'box', config: { resource: 'local-process' } },
    ]);
    expect(await readdir(join(dir, 'tmp'))).toEqual([]); // no staged files left behind
    expect(await queue.deleteQueueConfig('box')).toBe(true);
    expect(await queue.deleteQueueConfig('box')).toBe(false);
    expect(await queue.getQueueConfig('box')).toBeUndefined();
  });

  it('refuses an invalid config without storing anything', async () => {
    const error = await queue.setQueueConfig('box', { ...config, template_variables: {} }).catch((e: unknown) => e);
    expect(LaunchValidationError.isInstance(error) && (error as LaunchValidationError).issues.map((i) => i.path)).toEqual([
      'resource_args.local-container.gpus',
      'resource_args.local-container.shm-size',
    ]);
    expect(await queue.getQueueConfig('box')).toBeUndefined();
  });

  it('merges the config into each item at enqueue, with typed values; a requeue is stored as given', async () => {
    await queue.setQueueConfig('box', config);
    const item = await queue.enqueue({ queue: 'box', spec, templateVariables: { shm: '8', gpus: '2' } });
    const expected = { ...spec, resource: 'local-container', resource_args: { 'local-container': { gpus: 2, 'shm-size': '8g', env: ['RUN=${run_id}'] } } };
    expect(item.spec).toEqual(expected);
    expect((await queue.get(item.id))?.spec).toEqual(expected);

    const { id: agent } = await queue.register({ queues: ['box'], hostname: 'h', version: 't', config: {} });
    const popped = await queue.pop('box', agent);
    await queue.ack(popped!, 'run1');
    const requeued = await queue.requeue!(popped!, { ...expected, run_id: 'run1' });
    expect((await queue.get(requeued))?.spec).toEqual({ ...expected, run_id: 'run1' });
  });

  it('refuses bad values and conflicting specs, queueing nothing', async () => {
    await queue.setQueueConfig('box', config);
    const attempts: { spec: unknown; templateVariables?: Record<string, string> }[] = [
      { spec, templateVariables: { shm: '8', gpus: '3' } },
      { spec, templateVariables: { gpus: '1' } },
      { spec, templateVariables: { shm: '8', gpu: '1' } },
      { spec: { ...spec, resource: 'kubernetes' }, templateVariables: { shm: '1' } },
      { spec: { ...spec, template_variables: { shm: 8 } } },
      { spec: { ...spec, overrides: { entrypoint: ['x'] } }, templateVariables: { shm: '1' } },
    ];
    const codes: string[] = [];
    for (const a of attempts) {
      const error = await queue.enqueue({ queue: 'box', ...a }).catch((e: unknown) => e);
      expect(LaunchValidationError.isInstance(error), String(error)).toBe(true);
      codes.push((error as LaunchError).code);
    }
    expect(codes).toEqual([
      'template_variables.invalid',
      'template_variables.invalid',
      'template_variables.invalid',
      'spec.invalid',
      'template_variables.invalid',
      'spec.invalid',
    ]);
    expect(await queue.counts({ queue: 'box' })).toEqual({ queued: 0, claimed: 0, done: 0 });
  });

  it('a queue without a config stores specs as given, and refuses template values', async () => {
    const item = await queue.enqueue({ queue: 'plain', spec: { n: 1 } });
    expect(item.spec).toEqual({ n: 1 });
    await expect(queue.enqueue({ queue: 'plain', spec, templateVariables: { x: '1' } })).rejects.toThrow(
      /queue "plain" has no template variable "x": it declares no template variables/,
    );
  });

  it('a config file broken by hand is refused at enqueue with its path, and listed with its problem', async () => {
    await queue.setQueueConfig('box', config);
    const file = join(dir, 'queue-configs', 'box.json');
    await writeFile(file, JSON.stringify({ v: 1, queue: 'box', config: { resource: 'kubernets' } }));
    await expect(queue.enqueue({ queue: 'box', spec })).rejects.toThrow(`queue config file ${file} is invalid:\n  - resource: expected a resource name`);
    await writeFile(file, '{not json');
    await expect(queue.enqueue({ queue: 'box', spec })).rejects.toThrow(/the queue config of "box" \(.*box.json\) is not JSON/);
    expect(await queue.listQueueConfigs()).toEqual([{ queue: 'box', problem: expect.stringMatching(/is not JSON/) }]);
  });
});
