import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEmbeddedQueue, type EmbeddedQueue } from '@launch/core';

/** A temporary state directory (on the machine's temp file system) with an embedded queue over it. */
export interface BenchQueue {
  dir: string;
  queue: EmbeddedQueue;
  close(): Promise<void>;
}

/** Opens a fresh embedded queue with its default options (fsync on) unless told otherwise. */
export function openBenchQueue(prefix: string, options: { fsync?: boolean } = {}): BenchQueue {
  const dir = mkdtempSync(join(tmpdir(), `launch-bench-${prefix}-`));
  const queue = createEmbeddedQueue({ stateDir: dir, ...(options.fsync === undefined ? {} : { fsync: options.fsync }) });
  return {
    dir,
    queue,
    async close() {
      await queue.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A local-process spec running `command` (no shell unless the command is one). */
export function commandSpec(...command: string[]): Record<string, unknown> {
  return { resource: 'local-process', overrides: { entry_point: command } };
}

/** Enqueues `count` copies of `spec` on `default`; returns the ids in order. */
export async function fill(queue: EmbeddedQueue, count: number, spec: unknown): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push((await queue.enqueue({ queue: 'default', spec })).id);
  return ids;
}
