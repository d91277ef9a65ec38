import { describeQueueSource } from '@launch/testkit';
import { createEmbeddedQueue } from './queue.js';
import { tempStateDir } from './test-helpers.js';

describeQueueSource('embedded', async () => {
  const { dir, cleanup } = await tempStateDir();
  // A long fallback poll, so the wake-up test proves the file watcher, not the timer.
  const queue = createEmbeddedQueue({ stateDir: dir, pollIntervalMs: 60_000 });
  return {
    source: queue,
    enqueue: async (q, spec, priority) => {
      await queue.enqueue({ queue: q, spec, ...(priority ? { priority } : {}) });
    },
    cleanup,
  };
});
