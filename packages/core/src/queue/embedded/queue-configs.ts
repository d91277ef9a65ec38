import { link, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { LaunchError, LaunchValidationError } from '../../errors.js';
import { normalizeLaunchSpec } from '../../spec.js';
import { mergeQueueConfig, parseQueueConfig, type QueueConfig } from '../queue-config.js';
import { errno, fsyncDir, listDir, readLimited, writeAtomic } from './files.js';
import { checkQueueName, decodeName, encodeName, randomId } from './layout.js';

/** Largest queue config file read (bytes). */
const MAX_CONFIG_BYTES = 1024 * 1024;

/** The per-queue configs of the embedded queue: `queue-configs/<queue>.json` under the state directory. */
export interface QueueConfigStore {
  get(queue: string): Promise<QueueConfig | undefined>;
  /** Validates and stores; `create` refuses a queue that already has a config (atomically: a link, not a check then a write). */
  set(queue: string, raw: unknown, mode: 'create' | 'upsert'): Promise<QueueConfig>;
  /** Every stored config, by queue name; one that cannot be read or fails the checks comes with `problem` instead. */
  list(): Promise<{ queue: string; config?: QueueConfig; problem?: string }[]>;
  delete(queue: string): Promise<boolean>;
  /**
   * The spec to store for a new item: the queue's config merged in ({@link mergeQueueConfig}) and, when a
   * config applied, the result checked as the agent will check it, so a bad item is refused now rather
   * than failed later.
   */
  apply(queue: string, spec: unknown, templateVariables: Readonly<Record<string, unknown>> | undefined): Promise<unknown>;
}

interface StoredConfig {
  v: 1;
  queue: string;
  updatedAt: string;
  config: QueueConfig;
}

export function createQueueConfigStore(options: {
  root: string;
  tmp: string;
  ensureDir: (dir: string) => Promise<void>;
  fsync: boolean;
  now: () => number;
}): QueueConfigStore {
  const dir = join(options.root, 'queue-configs');
  const fileOf = (queue: string) => join(dir, `${encodeName(checkQueueName(queue))}.json`);

  const read = async (queue: string, path: string): Promise<QueueConfig | undefined> => {
    const got = await readLimited(path, MAX_CONFIG_BYTES);
    if (!got.ok) {
      if (got.missing) return undefined;
      throw new LaunchError({
        code: 'queue_config.unreadable',
        stage: 'agent',
        message: `the queue config of "${queue}" (${path}) cannot be read: ${got.problem}`,
      });
    }
    let stored: unknown;
    try {
      stored = JSON.parse(got.text);
    } catch (error) {
      throw new LaunchError({
        code: 'queue_config.unreadable',
        stage: 'agent',
        message: `the queue config of "${queue}" (${path}) is not JSON: ${(error as Error).message}`,
        hint: `replace it with "launch-agent queue edit ${queue}"`,
      });
    }
    const config = stored && typeof stored === 'object' ? (stored as Partial<StoredConfig>).config : undefined;
    try {
      // A file edited by hand gets the same checks as one written through set().
      return parseQueueConfig(config, queue);
    } catch (error) {
      if (error instanceof LaunchValidationError) {
        throw new LaunchValidationError({
          code: error.code,
          stage: 'agent',
          subject: `queue config file ${path}`,
          issues: error.issues,
          hint: `fix it with "launch-agent queue edit ${queue}"`,
        });
      }
      throw error;
    }
  };

  const serialize = (queue: string, config: QueueConfig) =>
    JSON.stringify({ v: 1, queue, updatedAt: new Date(options.now()).toISOString(), config } satisfies StoredConfig, null, 2) + '\n';

  const store: QueueConfigStore = {
    get: (queue) => read(queue, fileOf(queue)),

    async set(queue, raw, mode) {
      const path = fileOf(queue);
      const config = parseQueueConfig(raw, queue);
      await Promise.all([options.ensureDir(dir), options.ensureDir(options.tmp)]);
      const data = serialize(queue, config);
      if (mode === 'upsert') {
        await writeAtomic(options.tmp, path, data, { fsync: options.fsync });
        return config;
      }
      // Written whole beside, then linked into place: link() fails if a config appeared meanwhile.
      const staged = join(options.tmp, `${randomId(16)}.queue-config`);
      await writeAtomic(options.tmp, staged, data, { fsync: options.fsync });
      try {
        await link(staged, path);
      } catch (error) {
        if (errno(error) === 'EEXIST') {
          throw new LaunchError({
            code: 'queue_config.exists',
            stage: 'agent',
            message: `queue "${queue}" already has a queue config`,
            hint: `change it with "launch-agent queue edit ${queue}", or delete it first`,
          });
        }
        throw error;
      } finally {
        await unlink(staged).catch(() => {});
      }
      if (options.fsync) await fsyncDir(dir);
      return config;
    },

    async list() {
      const out: { queue: string; config?: QueueConfig; problem?: string }[] = [];
      for (const file of (await listDir(dir)).filter((f) => f.endsWith('.json')).sort()) {
        const queue = decodeName(file.slice(0, -'.json'.length));
        try {
          const config = await read(queue, join(dir, file));
          if (config) out.push({ queue, config });
        } catch (error) {
          out.push({ queue, problem: (error as Error).message });
        }
      }
      return out;
    },

    async delete(queue) {
      try {
        await unlink(fileOf(queue));
      } catch (error) {
        if (errno(error) === 'ENOENT') return false;
        throw error;
      }
      if (options.fsync) await fsyncDir(dir);
      return true;
    },

    async apply(queue, spec, templateVariables) {
      const config = await store.get(queue);
      const merged = mergeQueueConfig(config, spec, { queue, templateVariables });
      if (config) normalizeLaunchSpec(merged.spec);
      return merged.spec;
    },
  };
  return store;
}
