import { EventEmitter } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Logger } from '../../logger.js';
import { type Notifier, type NotifierOptions, createNotifier } from './notify.js';
import { WATCHED_POLL_INTERVAL_MS, createEmbeddedQueue } from './queue.js';
import { tempStateDir, waitFor } from './test-helpers.js';

/** A logger that keeps its warnings. */
function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  const noop = () => {};
  return { debug: noop, info: noop, error: noop, warn: (obj, msg) => void warnings.push(typeof obj === 'string' ? obj : (msg ?? '')), warnings };
}

/** A watcher that reports nothing until the test makes it fail. */
function fakeWatcher() {
  const emitter = new EventEmitter();
  let closed = false;
  return {
    watcher: Object.assign(emitter, {
      close: () => {
        closed = true;
      },
    }),
    fail: () => emitter.emit('error', new Error('inotify went away')),
    closed: () => closed,
  };
}

describe('embedded queue notifier', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  const made: Notifier[] = [];
  const make = (options: Partial<NotifierOptions> & { logger?: Logger } = {}) => {
    const n = createNotifier({ pollIntervalMs: 20, logger: recordingLogger(), ...options });
    made.push(n);
    return n;
  };

  beforeEach(async () => {
    ({ dir, cleanup } = await tempStateDir());
  });
  afterEach(async () => {
    for (const n of made.splice(0)) n.close();
    await cleanup();
  });

  it('does not poll while the directory is watched on a local file system, and wakes on a write to it', async () => {
    const n = make();
    const queued = join(dir, 'q', 'queued');
    n.watchDir('q', queued);
    let woken = 0;
    n.subscribe(() => woken++);
    expect(n.polling()).toBe(false);
    // Ten poll intervals go by: a poll would have woken the subscriber by now.
    const until = Date.now() + 10 * 20;
    while (Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(woken).toBe(0);
    await writeFile(join(queued, 'item.json'), '{}');
    await waitFor(() => woken > 0, 'the watch to wake the subscriber');
  });

  it('polls every pollIntervalMs when the directory cannot be watched, and says so once', async () => {
    const logger = recordingLogger();
    const n = make({
      logger,
      watch: () => {
        throw Object.assign(new Error('no more inotify watches'), { code: 'ENOSPC' });
      },
    });
    n.watchDir('q', join(dir, 'q', 'queued'));
    let woken = 0;
    n.subscribe(() => woken++);
    expect(n.polling()).toBe(true);
    await waitFor(() => woken >= 3, 'the poll to wake the subscriber three times');
    // Every pop asks to watch the directory again (a retry); the problem is reported once.
    n.watchDir('q', join(dir, 'q', 'queued'));
    n.watchDir('q', join(dir, 'q', 'queued'));
    expect(logger.warnings.filter((w) => w.includes('cannot watch'))).toHaveLength(1);
  });

  it('falls back to polling when a working watch fails, and stops when the last subscriber leaves', async () => {
    const fake = fakeWatcher();
    const n = make({ watch: () => fake.watcher });
    n.watchDir('q', join(dir, 'q', 'queued'));
    let woken = 0;
    const unsubscribe = n.subscribe(() => woken++);
    expect(n.polling()).toBe(false);
    fake.fail();
    expect(fake.closed()).toBe(true);
    expect(n.polling()).toBe(true);
    await waitFor(() => woken >= 2, 'the poll to take over');
    unsubscribe();
    expect(n.polling()).toBe(false);
  });

  it('polls a directory on a network file system even though its watch starts', async () => {
    const logger = recordingLogger();
    const n = make({ logger, fsType: () => 0x6969 /* NFS */ });
    n.watchDir('q', join(dir, 'q', 'queued'));
    let woken = 0;
    n.subscribe(() => woken++);
    expect(n.polling()).toBe(true);
    await waitFor(() => woken >= 2, 'the poll to wake the subscriber');
    expect(logger.warnings.some((w) => w.includes('network or FUSE'))).toBe(true);
  });

  it('polls while any one of several directories is not watched', async () => {
    let calls = 0;
    const n = make({
      watch: (d) => {
        calls++;
        if (d.includes('broken')) throw new Error('cannot watch');
        return fakeWatcher().watcher;
      },
    });
    n.watchDir('good', join(dir, 'good', 'queued'));
    n.subscribe(() => {});
    expect(n.polling()).toBe(false);
    n.watchDir('broken', join(dir, 'broken', 'queued'));
    expect(n.polling()).toBe(true);
    expect(calls).toBe(2);
  });
});

describe('embedded queue poll interval', () => {
  it('asks its agent for a safety-net poll of at least WATCHED_POLL_INTERVAL_MS, its own poll being for unwatched directories', async () => {
    const { dir, cleanup } = await tempStateDir();
    try {
      expect(createEmbeddedQueue({ stateDir: dir }).capabilities.pollIntervalMs).toBe(WATCHED_POLL_INTERVAL_MS);
      expect(createEmbeddedQueue({ stateDir: dir, pollIntervalMs: 200 }).capabilities.pollIntervalMs).toBe(WATCHED_POLL_INTERVAL_MS);
      expect(createEmbeddedQueue({ stateDir: dir, pollIntervalMs: 60_000 }).capabilities.pollIntervalMs).toBe(60_000);
    } finally {
      await cleanup();
    }
  });
});
