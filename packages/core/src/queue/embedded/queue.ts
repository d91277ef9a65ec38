import { hostname as osHostname } from 'node:os';
import { rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { QueueItem } from '../../contracts/queue-source.js';
import { LaunchError, LaunchValidationError } from '../../errors.js';
import { childLogger, silentLogger } from '../../logger.js';
import { PRIORITIES, type Priority } from '../../spec.js';
import { zodIssues } from '../../validation.js';
import { createAgentFiles } from './agents.js';
import { createDirCache, errno, listDir, mapLimited, pidAlive, readLimited, writeAtomic } from './files.js';
import { type ItemName, baseForId, checkQueueName, claimedFile, createNamer, decodeName, layout, parseItemName, queuedFile, randomId } from './layout.js';
import { createNotifier } from './notify.js';
import { createQueueConfigStore } from './queue-configs.js';
import { type StoredRecord, parseRecord, serialize, toItemRecord } from './record.js';
import type { EmbeddedQueue, EmbeddedQueueOptions, EnqueueOptions, ItemRecord, ItemState } from './types.js';

const optionsSchema = z.object({
  stateDir: z.string().min(1),
  pollIntervalMs: z.number().int().positive().optional(),
  leaseMs: z.number().int().positive().optional(),
  maxItemBytes: z.number().int().positive().optional(),
  fsync: z.boolean().optional(),
  autoRenew: z.boolean().optional(),
  logger: z.custom<NonNullable<EmbeddedQueueOptions['logger']>>((v) => typeof v === 'object' && v !== null).optional(),
  now: z.custom<() => number>((v) => typeof v === 'function').optional(),
  hostname: z.string().min(1).optional(),
  // `false`, or the object below (checked on its own, so an issue names the field inside it).
  retainDone: z.unknown().optional(),
});

const positiveOrInfinity = (what: string) =>
  z.number().refine((v) => v === Infinity || (Number.isInteger(v) && v >= 1), { message: `expected a whole number of ${what} >= 1, or Infinity` });
const retainObjectSchema = z.object({
  retainDone: z.object({ maxItems: positiveOrInfinity('items').optional(), maxAgeMs: positiveOrInfinity('ms').optional() }).strict(),
});

/** Finished items kept by default: the newest 10,000, none older than 7 days. */
export const DEFAULT_RETAIN_DONE = { maxItems: 10_000, maxAgeMs: 7 * 24 * 3600_000 } as const;
/** A record that ended less than this long ago is never pruned: a waiter (`enqueue --wait`) may not have read it yet. */
const PRUNE_GRACE_MS = 60_000;
/** Automatic pruning runs at most this often per queue instance (after an item ends). */
const PRUNE_EVERY_MS = 60_000;
/** File operations in flight at once while pruning: few, so pops and claims keep the thread pool. */
const PRUNE_LANES = 4;

/** An item this instance has claimed: its file and the record it last wrote there. */
interface Held {
  queue: string;
  name: ItemName;
  path: string;
  record: StoredRecord;
  /** Serialises writes of this item's file so that a later write never lands before an earlier one. */
  chain: Promise<void>;
  /** The item's end is written and its file moved to `done/`: writes queued behind that (a renewal, a heartbeat) are moot. */
  ended?: boolean;
  /** The lease end (ms) the last completed write put on disk. */
  leaseOnDisk?: number;
}

/**
 * How often the agent looks at the queue when nothing wakes it, while file-system notifications work
 * (`capabilities.pollIntervalMs`, when above `pollIntervalMs`): a safety net for an event lost by the
 * watch, and the pace of an idle agent's claim recovery and status keep-alive. W&B's agent polls this often.
 */
export const WATCHED_POLL_INTERVAL_MS = 10_000;

/** File operations in flight at once for bulk work (list, lease renewal). */
const IO_LANES = 16;

const TERMINAL: ReadonlySet<ItemState> = new Set(['finished', 'failed']);

/**
 * Creates the embedded durable queue, the default `QueueSource`: one JSON file per item under
 * `stateDir`, claimed by an atomic `rename()` so that agents in several processes never share an item.
 *
 * Delivery guarantee: at least once, and exactly once unless an agent dies mid-job.
 * - A claim belongs to one agent; it returns to the queue only when its lease (renewed by `heartbeat`
 *   and automatically while this process lives) has expired and the claiming process is gone, or the
 *   lease expired more than another `leaseMs` ago (pid reused, or an agent on another host).
 * - That includes acknowledged items: the embedded runners are local, so the job died with its agent
 *   and runs again (`attempts` counts claims; the next claim adds a warning naming the lost attempt).
 * - An item whose end was recorded (`finish` or `fail`) is never handed out again: its record is
 *   rewritten with the end state before it moves to `done/`, and recovery finishes that move.
 * - A job that completed but whose agent died before `finish` was written runs again: that window is
 *   the only source of a second run.
 */
export function createEmbeddedQueue(options: EmbeddedQueueOptions): EmbeddedQueue {
  const parsed = optionsSchema.safeParse(options);
  const retainInput = { retainDone: options?.retainDone };
  const retained = retainInput.retainDone === undefined || retainInput.retainDone === false ? undefined : retainObjectSchema.safeParse(retainInput);
  const invalid = !parsed.success
    ? { error: parsed.error, input: options }
    : retained && !retained.success
      ? { error: retained.error, input: retainInput }
      : undefined;
  if (invalid) {
    throw new LaunchValidationError({
      code: 'config.invalid',
      subject: 'embedded queue options',
      issues: zodIssues(invalid.error, invalid.input),
    });
  }
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const leaseMs = options.leaseMs ?? 30_000;
  const maxItemBytes = options.maxItemBytes ?? 16 * 1024 * 1024;
  const durable = options.fsync ?? true;
  const autoRenew = options.autoRenew ?? true;
  const now = options.now ?? Date.now;
  const host = options.hostname ?? osHostname();
  const retain = options.retainDone === false ? undefined : { ...DEFAULT_RETAIN_DONE, ...(options.retainDone ?? {}) };
  const logger = childLogger(options.logger ?? silentLogger, { component: 'embedded-queue' });
  const paths = layout(options.stateDir);
  const ensureDir = createDirCache();
  const nameFor = createNamer(now);
  const notifier = createNotifier({ pollIntervalMs, logger });
  const agents = createAgentFiles({ paths, ensureDir, now, hostname: host });
  const queueConfigs = createQueueConfigStore({ root: paths.root, tmp: paths.tmp, ensureDir, fsync: durable, now });
  const held = new Map<string, Held>();
  const iso = (ms = now()) => new Date(ms).toISOString();
  // Recovery reads every claimed file: run it on pop at most this often (by the injectable clock).
  const recoveryEveryMs = Math.min(Math.max(leaseMs / 4, 10), 5000);
  let lastRecovery = Number.NEGATIVE_INFINITY;
  let recovering: Promise<number> | undefined;
  let renewTimer: NodeJS.Timeout | undefined;
  let closed = false;
  let lastPrune = Number.NEGATIVE_INFINITY;
  let pruning: Promise<number> | undefined;

  const knowQueue = (queue: string) => notifier.watchDir(queue, paths.queued(queue));

  const queueDirs = async (queue: string) => {
    await Promise.all([ensureDir(paths.queued(queue)), ensureDir(paths.claimed(queue)), ensureDir(paths.done(queue)), ensureDir(paths.tmp)]);
  };

  // ---- writing held items ----------------------------------------------------------------------

  const lost = (h: Held) =>
    new LaunchError({
      code: 'queue.claim_lost',
      stage: 'agent',
      message: `item ${h.record.id} of queue ${h.queue} is no longer claimed by this agent (its lease expired and another agent took it back)`,
      hint: 'call heartbeat() more often than leaseMs, or raise leaseMs',
    });

  /** Rewrites a held item's file from its in-memory record, in order, after checking the claim still stands. */
  const writeHeld = (h: Held, fsync = false): Promise<void> => {
    const next = h.chain.then(async () => {
      if (h.ended) return;
      try {
        await stat(h.path);
      } catch (error) {
        if (errno(error) === 'ENOENT') {
          if (held.get(h.record.id) === h) held.delete(h.record.id);
          throw lost(h);
        }
        throw error;
      }
      const lease = h.record.leaseUntil;
      await writeAtomic(paths.tmp, h.path, serialize(h.record), { fsync });
      h.leaseOnDisk = lease ? Date.parse(lease) : undefined;
    });
    h.chain = next.catch(() => {});
    return next;
  };

  /** Writes a held item's end state, then moves it to `done/` (recovery completes the move after a crash). */
  const settle = async (h: Held) => {
    await writeHeld(h, durable);
    h.ended = true;
    if (held.get(h.record.id) === h) held.delete(h.record.id);
    await rename(h.path, join(paths.done(h.queue), queuedFile(h.name.base)));
    schedulePrune();
  };

  const renewEveryMs = Math.max(Math.floor(leaseMs / 3), 10);

  const renewAll = async () => {
    if (held.size === 0) {
      // Nothing to renew: no timer while idle (the next claim starts it again).
      stopRenewing();
      return;
    }
    const t = now();
    const until = iso(t + leaseMs);
    // A lease written to disk within the last half period (by the claim, or the agent's heartbeat) is left
    // alone: the next tick renews it, while at least half of it is still left.
    const stale = [...held.values()].filter((h) => !(h.leaseOnDisk !== undefined && h.leaseOnDisk - t > leaseMs - renewEveryMs / 2));
    await mapLimited(stale, IO_LANES, (h) => {
      h.record.leaseUntil = until;
      return writeHeld(h).catch((error: unknown) => logger.warn({ err: error, item: h.record.id }, 'embedded queue: could not renew a lease'));
    });
  };

  const startRenewing = () => {
    if (!autoRenew || renewTimer || closed) return;
    renewTimer = setInterval(() => void renewAll(), renewEveryMs);
    renewTimer.unref();
  };

  function stopRenewing() {
    if (renewTimer) clearInterval(renewTimer);
    renewTimer = undefined;
  }

  // ---- finding items on disk -------------------------------------------------------------------

  type Where = 'queued' | 'claimed' | 'done';
  const dirOf = (queue: string, where: Where) => (where === 'queued' ? paths.queued(queue) : where === 'claimed' ? paths.claimed(queue) : paths.done(queue));

  const allQueues = async () => (await listDir(paths.queues)).map(decodeName);

  /**
   * Finds an item's file in one state directory. In `queued/` and `done/` the name follows from the id
   * (one stat); `claimed/` names carry the claim token, so that directory (as small as the number of
   * claims) is listed, as is any directory for an id not made by this version's namer.
   */
  const findFile = async (queue: string, id: string, where: Where) => {
    const dir = dirOf(queue, where);
    const base = baseForId(id);
    if (base !== undefined && where !== 'claimed') {
      const file = queuedFile(base);
      try {
        await stat(join(dir, file));
      } catch (error) {
        if (errno(error) === 'ENOENT' || errno(error) === 'ENOTDIR') return undefined;
        throw error;
      }
      const name = parseItemName(file);
      return name ? { name, path: join(dir, file) } : undefined;
    }
    for (const file of await listDir(dir)) {
      if (base !== undefined && !file.startsWith(`${base}.`)) continue;
      const name = parseItemName(file);
      if (name?.id === id) return { name, path: join(dir, file) };
    }
    return undefined;
  };

  const readRecord = async (queue: string, name: ItemName, path: string): Promise<StoredRecord | undefined> => {
    const read = await readLimited(path, maxItemBytes);
    if (!read.ok) return undefined;
    const r = parseRecord(read.text, { id: name.id, queue, priority: name.priority });
    return r.ok ? r.record : undefined;
  };

  /** The public view of a file found in `where`; the directory decides the state where the file cannot. */
  const view = (record: StoredRecord, where: Where, name: ItemName): ItemRecord => {
    if (where === 'queued') {
      // A recovered item still carries its lost claim; the queue position is what counts now.
      const { claimedBy: _b, claimedPid: _p, claimedHost: _h, claimedAt: _a, leaseUntil: _l, ackedAt: _k, runId: _r, ...rest } = record;
      return toItemRecord({ ...rest, v: 1 }, 'queued');
    }
    if (where === 'claimed' && record.claimToken !== name.token) {
      // The claim is being written (or its writer died): no claim details yet.
      return toItemRecord({ ...record, claimedBy: undefined, claimedPid: undefined, leaseUntil: undefined }, 'claimed');
    }
    return toItemRecord(record);
  };

  /** A held item, or one claimed by this process through another instance (adopted). */
  const holding = async (item: QueueItem): Promise<Held | undefined> => {
    const h = held.get(item.id);
    if (h) return h;
    const found = await findFile(item.queue, item.id, 'claimed');
    if (!found?.name.token) return reclaim(item);
    const record = await readRecord(item.queue, found.name, found.path);
    if (!record || record.claimToken !== found.name.token || record.claimedHost !== host) return undefined;
    if (record.claimedPid === process.pid) {
      const adopted: Held = { queue: item.queue, name: found.name, path: found.path, record, chain: Promise.resolve() };
      held.set(item.id, adopted);
      startRenewing();
      return adopted;
    }
    // Claimed by an agent process that is gone (an agent restarted and adopted the run, e.g. a
    // Kubernetes Job that outlived it): take the claim over by renaming it to a new token, the same
    // atomic step as a fresh claim, so recovery by another agent and this take-over cannot both win.
    if (record.claimedPid !== undefined && pidAlive(record.claimedPid)) return undefined;
    // ENOENT: recovered by another agent first.
    const takenOver = await claimFile(item, found, record);
    if (takenOver) logger.info({ queue: item.queue, item: item.id, from: found.name.token }, 'embedded queue: took over the claim of a dead agent process');
    return takenOver;
  };

  /**
   * Claims `found` (in `queued/` or `claimed/`) for this process: renamed to a new token in `claimed/`, the same
   * atomic step as a pop, so of two processes claiming one file only one wins; undefined when it is gone (the
   * other won). The record gets this process's claim and lease, and the lease is renewed from now on.
   */
  const claimFile = async (item: QueueItem, found: { name: ItemName; path: string }, record: StoredRecord): Promise<Held | undefined> => {
    const token = randomId(12);
    const name = { ...found.name, token };
    const to = join(paths.claimed(item.queue), claimedFile(found.name.base, token));
    try {
      await rename(found.path, to);
    } catch (error) {
      if (errno(error) === 'ENOENT') return undefined;
      throw error;
    }
    const t = now();
    Object.assign(record, {
      claimToken: token,
      claimedPid: process.pid,
      claimedAt: iso(t),
      leaseUntil: iso(t + leaseMs),
    } satisfies Partial<StoredRecord>);
    const h: Held = { queue: item.queue, name, path: to, record, chain: Promise.resolve() };
    held.set(item.id, h);
    await writeHeld(h);
    startRenewing();
    return h;
  };

  /**
   * An acked item whose claim was lost and returned to the queue (its agent died), reported by this process
   * (an agent that adopted the run, e.g. a container that outlived its agent): claim it back from `queued/`
   * by the same atomic rename as a pop, so the outcome is recorded now and the item is not handed out again.
   * If another agent popped it first, that agent follows the run instead (the item carries `previousRun`).
   */
  const reclaim = async (item: QueueItem): Promise<Held | undefined> => {
    const found = await findFile(item.queue, item.id, 'queued');
    if (!found) return undefined;
    const record = await readRecord(item.queue, found.name, found.path);
    if (!record || record.state !== 'acked' || record.claimedHost !== host) return undefined;
    // ENOENT: popped by another agent first.
    const h = await claimFile(item, found, record);
    if (h) logger.info({ queue: item.queue, item: item.id }, 'embedded queue: claimed back an acked item whose run this process reports');
    return h;
  };

  /** Updates the record of an item that already ended (e.g. `finish` after `fail`). Only its agent does this. */
  const updateDone = async (item: QueueItem, change: (r: StoredRecord) => void): Promise<boolean> => {
    const found = await findFile(item.queue, item.id, 'done');
    if (!found) return false;
    const record = await readRecord(item.queue, found.name, found.path);
    if (!record) return false;
    change(record);
    await writeAtomic(paths.tmp, found.path, serialize(record), { fsync: durable });
    return true;
  };

  const notHeld = (item: QueueItem, action: string) =>
    new LaunchError({
      code: 'queue.not_claimed',
      stage: 'agent',
      message: `cannot ${action} item ${item.id} of queue ${item.queue}: this agent does not hold it (it was never popped here, already ended, or its claim was lost)`,
    });

  // ---- corrupt files ---------------------------------------------------------------------------

  /**
   * Fails an unreadable item: its file (already taken by rename, so no other agent sees it) moves to
   * `corrupt/` for inspection and a failure record naming the file and the problem goes to `done/`.
   */
  const quarantine = async (queue: string, file: string, path: string, name: ItemName | undefined, problem: string) => {
    const fresh = name ? undefined : nameFor('low');
    const id = name?.id ?? fresh!.id;
    const base = name?.base ?? fresh!.base;
    await ensureDir(paths.corrupt(queue));
    const kept = join(paths.corrupt(queue), `${base}-${file}`);
    let where = kept;
    try {
      await rename(path, kept);
    } catch (error) {
      where = path;
      logger.warn({ err: error, file: path }, 'embedded queue: could not move a corrupt item file');
    }
    const original = join(paths.queued(queue), file);
    const message = `queue item file ${original} is unusable: ${problem}; the file was moved to ${where}`;
    logger.error({ queue, item: id, file: where }, message);
    const at = iso();
    const record: StoredRecord = {
      v: 1,
      id,
      queue,
      priority: name?.priority ?? 'low',
      state: 'failed',
      enqueuedAt: at,
      spec: null,
      warnings: [],
      failure: { stage: 'agent', message, files: [where], at },
      finishedAt: at,
      attempts: 1,
    };
    await writeAtomic(paths.tmp, join(paths.done(queue), queuedFile(base)), serialize(record), { fsync: durable });
  };

  // ---- claiming --------------------------------------------------------------------------------

  /** After the rename: read what we took, and write our claim into it. Null when the file was unusable. */
  const completeClaim = async (queue: string, file: string, name: ItemName, token: string, path: string, agentId: string): Promise<QueueItem | null> => {
    const read = await readLimited(path, maxItemBytes);
    if (!read.ok) {
      if (!read.missing) await quarantine(queue, file, path, name, read.problem);
      return null;
    }
    const parsedRecord = parseRecord(read.text, { id: name.id, queue, priority: name.priority });
    if (!parsedRecord.ok) {
      await quarantine(queue, file, path, name, parsedRecord.problem);
      return null;
    }
    const record = parsedRecord.record;
    const t = now();
    // A lost claim that acked the item may have started a run that outlives its agent (a Kubernetes Job).
    const previousRun =
      record.state === 'acked' && record.runId ? { runId: record.runId, ...(record.claimedBy ? { agent: record.claimedBy } : {}) } : undefined;
    if (record.claimedBy && (record.state === 'claimed' || record.state === 'acked')) {
      // The previous claim was lost and recovered; say so on the item.
      const how = record.state === 'acked' ? `died while running it${record.runId ? ` as run ${record.runId}` : ''}` : 'died after claiming it';
      record.warnings.push({
        stage: 'agent',
        message: `attempt ${record.attempts} was lost: agent ${record.claimedBy} (pid ${record.claimedPid ?? '?'} on ${record.claimedHost ?? '?'}) ${how}; the item went back to the queue and runs again`,
        at: iso(t),
      });
    }
    delete record.ackedAt;
    delete record.runId;
    Object.assign(record, {
      state: 'claimed',
      claimToken: token,
      claimedBy: agentId,
      claimedPid: process.pid,
      claimedHost: host,
      claimedAt: iso(t),
      leaseUntil: iso(t + leaseMs),
      attempts: record.attempts + 1,
    } satisfies Partial<StoredRecord>);
    const h: Held = { queue, name, path, record, chain: Promise.resolve() };
    held.set(record.id, h);
    await writeHeld(h);
    startRenewing();
    return {
      id: record.id,
      queue,
      spec: record.spec,
      priority: record.priority,
      enqueuedAt: record.enqueuedAt,
      ...(previousRun ? { previousRun } : {}),
    };
  };

  const pop = async (queue: string, agentId: string): Promise<QueueItem | null> => {
    checkQueueName(queue);
    knowQueue(queue);
    await maybeRecover();
    await queueDirs(queue);
    const queued = paths.queued(queue);
    const claimed = paths.claimed(queue);
    // Re-list a few times when other agents took everything we saw; then report empty, the watcher wakes us.
    for (let round = 0; round < 3; round++) {
      const files = await listDir(queued);
      if (files.length === 0) return null;
      files.sort();
      for (const file of files) {
        const name = parseItemName(file);
        const from = join(queued, file);
        if (!name || name.token) {
          // Not a file enqueue wrote. Take it (the rename is the claim) and fail it.
          const taken = join(claimed, `.foreign-${randomId(8)}`);
          try {
            await rename(from, taken);
          } catch (error) {
            if (errno(error) === 'ENOENT') continue;
            throw error;
          }
          await quarantine(queue, file, taken, undefined, 'its name is not an item file name (<priority>-<time>-<n>-<id>.json, written by enqueue)');
          continue;
        }
        const token = randomId(12);
        const to = join(claimed, claimedFile(name.base, token));
        try {
          await rename(from, to);
        } catch (error) {
          if (errno(error) === 'ENOENT') continue; // another agent won this one
          throw error;
        }
        const item = await completeClaim(queue, file, name, token, to, agentId);
        if (item) return item;
      }
    }
    return null;
  };

  // ---- recovery --------------------------------------------------------------------------------

  /** Decides what to do with one claimed file: leave it, requeue it, or finish its move to done. */
  const recoverOne = async (queue: string, file: string): Promise<boolean> => {
    const name = parseItemName(file);
    if (!name?.token) return false;
    if (held.get(name.id)?.name.token === name.token) return false; // ours, and we are alive
    const path = join(paths.claimed(queue), file);
    const read = await readLimited(path, maxItemBytes);
    if (!read.ok && read.missing) return false;
    const parsedRecord = read.ok ? parseRecord(read.text, { id: name.id, queue, priority: name.priority }) : undefined;
    const record = parsedRecord?.ok ? parsedRecord.record : undefined;
    const t = now();
    if (record && record.claimToken === name.token) {
      if (TERMINAL.has(record.state)) {
        // Its end was recorded but the move to done/ did not happen: finish the move, never requeue.
        await rename(path, join(paths.done(queue), queuedFile(name.base))).catch(() => {});
        return false;
      }
      const leaseUntil = record.leaseUntil ? Date.parse(record.leaseUntil) : Number.NaN;
      if (Number.isFinite(leaseUntil) && t <= leaseUntil) return false;
      const gone = record.claimedHost === host && !(record.claimedPid !== undefined && pidAlive(record.claimedPid));
      const longExpired = !Number.isFinite(leaseUntil) || t > leaseUntil + leaseMs;
      if (!gone && !longExpired) return false;
      logger.warn(
        { queue, item: name.id, agent: record.claimedBy, pid: record.claimedPid, state: record.state, attempts: record.attempts },
        gone
          ? 'embedded queue: the agent holding this item is gone; returning the item to the queue'
          : 'embedded queue: the claim on this item expired long ago; returning the item to the queue',
      );
    } else {
      // The claim record is not written yet (or its writer died right after the rename, or the
      // file is unreadable). The rename set the file's ctime: wait a lease from then, in wall time.
      if (!read.ok || Date.now() <= read.ctimeMs + leaseMs) return false;
      logger.warn({ queue, item: name.id }, 'embedded queue: a claim was never completed; returning the item to the queue');
    }
    // This process may have claimed the file while it was being read (a take-over renames the dead process's claim to a
    // new token, then writes its record): the read saw no record for that token yet, but the claim is ours and alive.
    if (held.get(name.id)?.name.token === name.token) return false;
    try {
      await rename(path, join(paths.queued(queue), queuedFile(name.base)));
      return true;
    } catch (error) {
      if (errno(error) === 'ENOENT') return false; // another agent recovered it first
      throw error;
    }
  };

  /** Removes temp files left by writers that crashed mid-write (old enough that no writer is using them). */
  const sweepTemp = async () => {
    const cutoff = Date.now() - Math.max(2 * leaseMs, 10 * 60_000);
    for (const file of await listDir(paths.tmp)) {
      const path = join(paths.tmp, file);
      try {
        if ((await stat(path)).mtimeMs < cutoff) await unlink(path);
      } catch {
        // gone already, or not ours to remove
      }
    }
  };

  const recoverExpired = async (): Promise<number> => {
    lastRecovery = now();
    let count = 0;
    for (const queue of await allQueues()) {
      for (const file of await listDir(paths.claimed(queue))) {
        try {
          if (await recoverOne(queue, file)) count++;
        } catch (error) {
          logger.warn({ err: error, queue, file }, 'embedded queue: could not recover a claim');
        }
      }
    }
    await sweepTemp();
    if (count > 0) notifier.notify();
    return count;
  };

  const maybeRecover = async () => {
    if (now() - lastRecovery < recoveryEveryMs) return;
    recovering ??= recoverExpired().finally(() => {
      recovering = undefined;
    });
    try {
      await recovering;
    } catch (error) {
      logger.warn({ err: error }, 'embedded queue: recovery failed');
    }
  };

  // ---- enqueue and queries ---------------------------------------------------------------------

  const enqueue = async (input: EnqueueOptions): Promise<ItemRecord> => {
    const queue = checkQueueName(input?.queue);
    const priority: Priority = input.priority ?? 'medium';
    if (!PRIORITIES.includes(priority)) {
      throw new LaunchError({
        code: 'queue.invalid_priority',
        stage: 'agent',
        message: `priority ${JSON.stringify(priority)} is invalid: expected one of ${PRIORITIES.join(', ')}`,
      });
    }
    // The queue's config is merged in once, when the item is first enqueued (as W&B's server does at push).
    const spec = input.requeuedFrom ? input.spec : await queueConfigs.apply(queue, input.spec, input.templateVariables);
    const { id, base } = nameFor(priority);
    const record: StoredRecord = {
      v: 1,
      id,
      queue,
      priority,
      state: 'queued',
      enqueuedAt: iso(),
      spec,
      warnings: [],
      attempts: 0,
      ...(input.requeuedFrom ? { requeuedFrom: input.requeuedFrom } : {}),
    };
    if (input.spec === undefined) {
      throw new LaunchError({ code: 'queue.invalid_spec', stage: 'agent', message: 'the spec is missing (undefined)' });
    }
    let text: string;
    try {
      text = serialize(record);
    } catch (error) {
      throw new LaunchError({
        code: 'queue.invalid_spec',
        stage: 'agent',
        message: `the spec cannot be stored as JSON: ${(error as Error).message}`,
        cause: error,
      });
    }
    if (Buffer.byteLength(text) > maxItemBytes) {
      throw new LaunchError({
        code: 'queue.item_too_large',
        stage: 'agent',
        message: `the item is ${Buffer.byteLength(text)} bytes, over the ${maxItemBytes}-byte limit (maxItemBytes)`,
      });
    }
    await queueDirs(queue);
    await writeAtomic(paths.tmp, join(paths.queued(queue), queuedFile(base)), text, { fsync: durable });
    notifier.notify();
    return toItemRecord(record);
  };

  const list = async (filter: { queue?: string; state?: ItemState } = {}): Promise<ItemRecord[]> => {
    const queues = filter.queue !== undefined ? [checkQueueName(filter.queue)] : await allQueues();
    const wanted: Where[] =
      filter.state === 'queued'
        ? ['queued']
        : filter.state === 'claimed' || filter.state === 'acked'
          ? ['claimed']
          : filter.state
            ? ['done']
            : ['queued', 'claimed', 'done'];
    const out: { key: string; record: ItemRecord }[] = [];
    for (const queue of queues) {
      for (const where of wanted) {
        const dir = dirOf(queue, where);
        const files = await listDir(dir);
        const records = await mapLimited(files, IO_LANES, async (file) => {
          const name = parseItemName(file);
          if (!name) return undefined;
          const record = await readRecord(queue, name, join(dir, file));
          return record ? { key: name.base.slice(2), record: view(record, where, name) } : undefined;
        });
        for (const r of records) if (r && (!filter.state || r.record.state === filter.state)) out.push(r);
      }
    }
    // Enqueue order (the name's time and counter), whatever the priority.
    return out.sort((a, b) => a.key.localeCompare(b.key)).map((r) => r.record);
  };

  const counts = async (filter: { queue?: string } = {}) => {
    const queues = filter.queue !== undefined ? [checkQueueName(filter.queue)] : await allQueues();
    const out = { queued: 0, claimed: 0, done: 0 };
    for (const queue of queues) {
      for (const where of ['queued', 'claimed', 'done'] as const) out[where] += (await listDir(dirOf(queue, where))).length;
    }
    return out;
  };

  const get = async (id: string): Promise<ItemRecord | undefined> => {
    if (typeof id !== 'string' || id === '') return undefined;
    const h = held.get(id);
    if (h) return toItemRecord(h.record);
    // Scan in the direction items move (queued → claimed → done), so a move during the scan is seen at its
    // destination; a second pass covers the one backward move (recovery: claimed → queued).
    for (let pass = 0; pass < 2; pass++) {
      for (const queue of await allQueues()) {
        for (const where of ['queued', 'claimed', 'done'] as const) {
          const found = await findFile(queue, id, where);
          if (!found) continue;
          const record = await readRecord(queue, found.name, found.path);
          if (record) return view(record, where, found.name);
        }
      }
    }
    return undefined;
  };

  // ---- retention of finished items -------------------------------------------------------------

  /**
   * Removes finished records beyond the retention policy, oldest enqueued first: those beyond
   * `maxItems` per queue, and those that ended more than `maxAgeMs` ago. A record that ended within the
   * last minute stays whatever the policy, so a waiter still sees how its item ended. The names give
   * the enqueue order and a lower bound of each record's age; only candidates are stat'ed (the file's
   * mtime is when the end was written). Removal is an unlink, safe when several processes prune at once.
   */
  const prune = async (): Promise<number> => {
    lastPrune = now();
    if (!retain) return 0;
    let removed = 0;
    const wall = Date.now();
    for (const queue of await allQueues()) {
      const dir = paths.done(queue);
      const names: { file: string; key: string; enqueuedMs: number }[] = [];
      for (const file of await listDir(dir)) {
        const name = parseItemName(file);
        // Enqueue time and counter (the name without its priority digit) order the records.
        if (name && !name.token) names.push({ file, key: name.base.slice(2), enqueuedMs: Number(name.base.slice(2, 16)) });
      }
      const excess = retain.maxItems === Infinity ? 0 : Math.max(0, names.length - retain.maxItems);
      const ageLimit = retain.maxAgeMs === Infinity ? Number.NEGATIVE_INFINITY : wall - retain.maxAgeMs;
      // Candidates: the `excess` oldest, and any enqueued before the age limit (it cannot have ended
      // before it was enqueued, so the others are surely young enough).
      if (excess === 0 && !names.some((n) => n.enqueuedMs < ageLimit)) continue;
      names.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      const candidates = names.flatMap((n, i) => (i < excess || n.enqueuedMs < ageLimit ? [{ ...n, overCount: i < excess }] : []));
      const results = await mapLimited(candidates, PRUNE_LANES, async (c) => {
        const path = join(dir, c.file);
        try {
          const { mtimeMs } = await stat(path);
          if (mtimeMs > wall - PRUNE_GRACE_MS) return false;
          if (!c.overCount && mtimeMs >= ageLimit) return false;
          await unlink(path);
          return true;
        } catch (error) {
          if (errno(error) !== 'ENOENT') logger.warn({ err: error, file: path }, 'embedded queue: could not prune a finished item');
          return false;
        }
      });
      removed += results.filter(Boolean).length;
    }
    if (removed > 0) logger.debug({ removed }, 'embedded queue: pruned finished items');
    return removed;
  };

  /** Starts a prune in the background (never awaited by the caller) when the last one is old enough. */
  const schedulePrune = () => {
    if (!retain || closed || pruning || now() - lastPrune < PRUNE_EVERY_MS) return;
    pruning = prune()
      .catch((error: unknown) => {
        logger.warn({ err: error }, 'embedded queue: pruning finished items failed');
        return 0;
      })
      .finally(() => {
        pruning = undefined;
      });
  };

  // ---- the QueueSource -------------------------------------------------------------------------

  return {
    specificationVersion: 'v1',
    name: 'embedded',
    // The agent's own poll is a safety net: the notifier wakes it for new items, and polls every
    // `pollIntervalMs` itself while a queue directory cannot be watched reliably.
    capabilities: { notify: true, pollIntervalMs: Math.max(pollIntervalMs, WATCHED_POLL_INTERVAL_MS), localCode: true },
    stateDir: options.stateDir,

    async register(agent) {
      const queues = (agent.queues ?? []).map(checkQueueName);
      await Promise.all(queues.map(queueDirs));
      queues.forEach(knowQueue);
      const record = await agents.create({ hostname: agent.hostname || host, queues, version: agent.version });
      logger.info({ agent: record.id, queues }, 'embedded queue: agent registered');
      return { id: record.id, name: record.name };
    },

    pop,

    async ack(item, runId) {
      const h = await holding(item);
      if (!h) throw notHeld(item, 'acknowledge');
      h.record.state = 'acked';
      h.record.runId = runId;
      h.record.ackedAt = iso();
      await writeHeld(h);
    },

    async fail(item, failure) {
      const at = iso();
      const entry = { stage: failure.stage, message: failure.message, at, ...(failure.files ? { files: failure.files } : {}) };
      const h = await holding(item);
      if (h) {
        Object.assign(h.record, { state: 'failed', failure: entry, finishedAt: at } satisfies Partial<StoredRecord>);
        await settle(h);
        return;
      }
      const updated = await updateDone(item, (r) => {
        r.state = 'failed';
        r.failure = entry;
        r.finishedAt ??= at;
      });
      if (!updated) throw notHeld(item, 'fail');
    },

    async warn(item, warning) {
      const entry = { stage: warning.stage, message: warning.message, at: iso(), ...(warning.files ? { files: warning.files } : {}) };
      const h = await holding(item);
      if (h) {
        h.record.warnings.push(entry);
        await writeHeld(h);
        return;
      }
      if (!(await updateDone(item, (r) => void r.warnings.push(entry)))) throw notHeld(item, 'warn on');
    },

    async finish(item, result) {
      const at = iso();
      const apply = (r: StoredRecord) => {
        if (r.state !== 'failed') r.state = 'finished';
        r.runState = result.state;
        r.exitCode = result.exitCode ?? null;
        r.runId = result.runId;
        r.finishedAt ??= at;
      };
      const h = await holding(item);
      if (h) {
        apply(h.record);
        await settle(h);
        return;
      }
      if (!(await updateDone(item, apply))) throw notHeld(item, 'finish');
    },

    async release(item) {
      const h = await holding(item);
      if (!h) throw notHeld(item, 'release');
      // Not an attempt: undo the claim's count, and clear it so the next claim adds no "lost" warning.
      const r = h.record;
      for (const key of ['claimToken', 'claimedBy', 'claimedPid', 'claimedHost', 'claimedAt', 'leaseUntil', 'ackedAt', 'runId'] as const) {
        delete r[key];
      }
      r.state = 'queued';
      r.attempts = Math.max(0, r.attempts - 1);
      await writeHeld(h);
      held.delete(r.id);
      await rename(h.path, join(paths.queued(h.queue), queuedFile(h.name.base)));
      notifier.notify();
    },

    async requeue(item, spec) {
      const priority = item.priority ?? held.get(item.id)?.record.priority;
      const record = await enqueue({ queue: item.queue, spec, ...(priority ? { priority } : {}), requeuedFrom: item.id });
      return record.id;
    },

    updateAgentStatus: (agentId, status) => agents.setStatus(agentId, status),
    shouldStop: (agentId) => agents.agentStopRequested(agentId),
    isRunStopped: (run) => agents.stopRequested([run.itemId, run.runId]),

    subscribe: (listener) => notifier.subscribe(listener),

    async heartbeat(agentId, items) {
      const until = iso(now() + leaseMs);
      await mapLimited(items, IO_LANES, async (item) => {
        const h = held.get(item.id);
        if (!h || h.record.claimedBy !== agentId) {
          logger.debug({ item: item.id, agent: agentId }, 'embedded queue: heartbeat for an item this instance does not hold');
          return;
        }
        h.record.leaseUntil = until;
        await writeHeld(h);
      });
    },

    async close() {
      closed = true;
      notifier.close();
      stopRenewing();
      await Promise.all([...held.values()].map((h) => h.chain));
      await pruning;
    },

    enqueue,
    list,
    get,
    counts,
    recoverExpired,
    async prune() {
      // One prune at a time per instance: join the one running (a background one, or another caller's).
      pruning ??= prune().finally(() => {
        pruning = undefined;
      });
      return pruning;
    },
    requestStop: async (idOrRunId) => {
      if (!idOrRunId) throw new LaunchError({ code: 'queue.invalid_id', stage: 'agent', message: 'an item or run id is required' });
      await agents.requestStop(idOrRunId);
    },
    requestAgentStop: async (agentId) => {
      if (!agentId) throw new LaunchError({ code: 'queue.invalid_id', stage: 'agent', message: 'an agent id is required' });
      await agents.requestAgentStop(agentId);
    },
    listAgents: () => agents.list(),
    getQueueConfig: (queue) => queueConfigs.get(queue),
    setQueueConfig: (queue, config, mode = 'create') => queueConfigs.set(queue, config, mode),
    listQueueConfigs: () => queueConfigs.list(),
    deleteQueueConfig: (queue) => queueConfigs.delete(queue),
  };
}
