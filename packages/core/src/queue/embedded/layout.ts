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
 *   queue-configs/<queue>.json                               per-queue configs: resource and resource_args template (queue-configs.ts)
 *   tmp/                                                     temp files, renamed into place
 *
 * `<p>` is the priority digit (critical 0 … low 3), `<ms>` the enqueue time, `<n>` a per-process
 * counter, so names sort by priority then FIFO and `pop` never reads a file it does not take.
 *
 * The id is made from the same parts (`<ms:9><n:4><p:1><random:8>`, base 36), so an item's file name
 * follows from its id ({@link baseForId}): `get(id)` opens the file at its name in each state directory
 * instead of listing them. Nothing is stored beside the items to make that work (no shared index to
 * update, lose or repair after a crash): the name is the index, and an item moves between directories
 * by one atomic rename that keeps its name. Ids of other shapes (items written before this format) are
 * still found, by listing.
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

const MS_DIGITS = 9; // base 36: up to 36^9 - 1 > 10^14 - 1, the name's 14 decimal digits
const COUNTER_DIGITS = 4; // base 36: up to 1,679,615 > 999,999, the name's 6 decimal digits
const RANDOM_DIGITS = 8; // ~41 bits: two processes naming in the same millisecond with the same counter
const ID_LENGTH = MS_DIGITS + COUNTER_DIGITS + 1 + RANDOM_DIGITS;
const MAX_MS = 99_999_999_999_999;

/** A new item's id and the base of its file name, one derivable from the other ({@link baseForId}). */
export interface NewItemName {
  id: string;
  base: string;
}

/** Makes ids and file-name bases that sort by priority, then by enqueue order within this process. */
export function createNamer(now: () => number): (priority: Priority) => NewItemName {
  let lastMs = 0;
  let counter = 0;
  return (priority) => {
    const ms = Math.min(Math.max(Math.floor(now()), lastMs, 0), MAX_MS);
    if (ms === lastMs) counter++;
    else counter = 0;
    lastMs = ms;
    if (counter > 999_999) {
      // Over a million items in one millisecond: borrow the next millisecond to stay ordered.
      lastMs = ms + 1;
      counter = 0;
    }
    const p = PRIORITY_VALUE[priority];
    const id = `${lastMs.toString(36).padStart(MS_DIGITS, '0')}${counter.toString(36).padStart(COUNTER_DIGITS, '0')}${p}${randomId(RANDOM_DIGITS)}`;
    return { id, base: baseOf(p, lastMs, counter, id) };
  };
}

function baseOf(p: number | string, ms: number, counter: number, id: string): string {
  return `${p}-${String(ms).padStart(14, '0')}-${String(counter).padStart(6, '0')}-${id}`;
}

/**
 * The file-name base (`<p>-<ms>-<n>-<id>`) of the item with this id, when the id was made by
 * {@link createNamer}; undefined for any other id (the caller then lists directories).
 */
export function baseForId(id: string): string | undefined {
  if (id.length !== ID_LENGTH || !/^[0-9a-z]+$/.test(id)) return undefined;
  const ms = Number.parseInt(id.slice(0, MS_DIGITS), 36);
  const counter = Number.parseInt(id.slice(MS_DIGITS, MS_DIGITS + COUNTER_DIGITS), 36);
  const p = id[MS_DIGITS + COUNTER_DIGITS]!;
  if (!(ms <= MAX_MS) || !(counter <= 999_999) || !(p in PRIORITY_BY_DIGIT)) return undefined;
  return baseOf(p, ms, counter, id);
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
