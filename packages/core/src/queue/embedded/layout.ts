import { randomBytes } from 'node:crypto';
import { homedir as osHomedir } from 'node:os';
import { join } from 'node:path';
import { LaunchError } from '../../errors.js';
import { PRIORITY_VALUE, type Priority } from '../../spec.js';

/**
 * On-disk layout (one file per item; the directory an item's file is in is its queue position):
 *
 *   queues/<queue>/queued/<p>-<ms>-<n>-<id>.json            waiting; a sorted listing is the pop order
 *   queues/<queue>/claimed/<p>-<ms>-<n>-<id>.<token>.json   claimed by one agent (token = this claim)
 *   queues/<queue>/done/<p>-<ms>-<n>-<id>.json              finished or failed, kept for status queries
 *   corrupt/<queue>/<file>                                   unreadable item files, kept for inspection
 *   agents/<agent>.json, agents/<agent>.stop                 agent status files, stop requests
 *   stops/<item or run id>                                   run stop requests
 *   tmp/                                                     temp files, renamed into place
 *
 * `<p>` is the priority digit (critical 0 … low 3), `<ms>` the enqueue time, `<n>` a per-process
 * counter, so names sort by priority then FIFO and `pop` never reads a file it does not take.
 */
export interface Layout {
  root: string;
  queues: string;
  queued(queue: string): string;
  claimed(queue: string): string;
  done(queue: string): string;
  corrupt(queue: string): string;
  agents: string;
  stops: string;
  tmp: string;
}

export function layout(root: string): Layout {
  const queues = join(root, 'queues');
  return {
    root,
    queues,
    queued: (q) => join(queues, encodeName(q), 'queued'),
    claimed: (q) => join(queues, encodeName(q), 'claimed'),
    done: (q) => join(queues, encodeName(q), 'done'),
    corrupt: (q) => join(root, 'corrupt', encodeName(q)),
    agents: join(root, 'agents'),
    stops: join(root, 'stops'),
    tmp: join(root, 'tmp'),
  };
}

/** Queue, agent and run ids become single path segments; `.`, `..` and empty names are refused. */
export function encodeName(name: string): string {
  // encodeURIComponent leaves dots alone; a name of only dots would walk up the tree.
  return encodeURIComponent(name).replace(/^\.{1,2}$/, (dots) => '%2E'.repeat(dots.length)) || '%00';
}

export function decodeName(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** Throws a clear error for a queue name that cannot be a directory. */
export function checkQueueName(queue: unknown): string {
  if (typeof queue !== 'string' || queue === '' || queue === '.' || queue === '..' || queue.length > 200) {
    throw new LaunchError({
      code: 'queue.invalid_name',
      stage: 'agent',
      message: `queue name ${JSON.stringify(queue)} is invalid: expected 1 to 200 characters, not "." or ".."`,
    });
  }
  return queue;
}

const DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz';

/** A short random id of [0-9a-z] (~62 bits). */
export function randomId(length = 12): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const b of bytes) out += DIGITS[b % 36];
  return out;
}

const PRIORITY_BY_DIGIT: Record<string, Priority> = { '0': 'critical', '1': 'high', '2': 'medium', '3': 'low' };

/** The parts of an item's file name. */
export interface ItemName {
  /** `<p>-<ms>-<n>-<id>`: the sort key and the id, without token or extension. */
  base: string;
  id: string;
  priority: Priority;
  /** The claim token, for files in `claimed/`. */
  token?: string;
}

const NAME = /^([0-3])-(\d{14})-(\d{6})-([0-9a-z]{4,64})(?:\.([0-9a-z]{4,64}))?\.json$/;

export function parseItemName(file: string): ItemName | undefined {
  const m = NAME.exec(file);
  if (!m) return undefined;
  const [, p, ms, n, id, token] = m as unknown as [string, string, string, string, string, string | undefined];
  const priority = PRIORITY_BY_DIGIT[p];
  if (!priority) return undefined;
  return { base: `${p}-${ms}-${n}-${id}`, id, priority, ...(token ? { token } : {}) };
}

export const queuedFile = (base: string) => `${base}.json`;
export const claimedFile = (base: string, token: string) => `${base}.${token}.json`;

/** Makes file-name bases that sort by priority, then by enqueue order within this process. */
export function createNamer(now: () => number): (priority: Priority, id: string) => string {
  let lastMs = 0;
  let counter = 0;
  return (priority, id) => {
    const ms = Math.max(Math.floor(now()), lastMs);
    if (ms === lastMs) counter++;
    else counter = 0;
    lastMs = ms;
    if (counter > 999_999) {
      // Over a million items in one millisecond: borrow the next millisecond to stay ordered.
      lastMs = ms + 1;
      counter = 0;
    }
    return `${PRIORITY_VALUE[priority]}-${String(lastMs).padStart(14, '0')}-${String(counter).padStart(6, '0')}-${id}`;
  };
}

/**
 * Where the embedded queue lives by default: `LAUNCH_STATE_DIR`, else `$XDG_DATA_HOME/launch`,
 * else `~/.local/share/launch`.
 */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env, homedir: string = osHomedir()): string {
  if (env.LAUNCH_STATE_DIR) return env.LAUNCH_STATE_DIR;
  if (env.XDG_DATA_HOME) return join(env.XDG_DATA_HOME, 'launch');
  return join(homedir, '.local', 'share', 'launch');
}
