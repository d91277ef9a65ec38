/**
 * The embedded queue with a long history: 100,000 finished items in one queue (written straight to
 * `done/` in the queue's own file format and names, with file times 10 minutes old, as if an agent had
 * run them), plus 1,000 finished items named the way earlier versions named them (12-character random
 * ids) and 10 queued items. All in one run:
 * - `get(id)` (what `launch-agent enqueue --wait` polls) of a finished and of a queued item, by the file
 *   name the id gives, against `get()` of an old-format id in the same directory, which still lists every
 *   directory: the cost of the scan `get` did before;
 * - `counts()` and a `status`-style `list()` before pruning (100,000 records) and after (the default
 *   retention keeps the newest 10,000);
 * - the prune itself, and `pop` latency while it runs against `pop` latency with no prune.
 * fsync is off (the figures are about listing and reading, not durability).
 *
 *   npx tsx bench/queue-scale.ts [--items N]
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEmbeddedQueue } from '@launch/core';
import { createNamer, layout, randomId } from '../packages/core/src/queue/embedded/layout.js';
import { runIfMain, writeResult } from './lib/results.js';
import { distribution, round } from './lib/stats.js';
import { formatTable } from './lib/table.js';

const argItems = process.argv.indexOf('--items');
const ITEMS = argItems > 0 ? Number(process.argv[argItems + 1]) : Number(process.env.BENCH_SCALE_ITEMS ?? 100_000);
const LEGACY = 1000;

async function lanes<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

async function samples(n: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await timed(() => fn(i))).ms);
  return out;
}

export async function run(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'launch-bench-scale-'));
  try {
    const paths = layout(dir);
    for (const d of [paths.queued('q'), paths.claimed('q'), paths.done('q'), paths.tmp]) mkdirSync(d, { recursive: true });
    // History: enqueued over the past day, one record per item as the queue writes them.
    const start = Date.now() - 24 * 3600_000;
    let clock = start;
    const namer = createNamer(() => clock);
    const files: { path: string; text: string }[] = [];
    const ids: string[] = [];
    for (let i = 0; i < ITEMS; i++) {
      clock = start + Math.floor((i * 24 * 3600_000 * 0.9) / ITEMS);
      const { id, base } = namer('medium');
      ids.push(id);
      const at = new Date(clock).toISOString();
      const record = {
        v: 1,
        id,
        queue: 'q',
        priority: 'medium',
        state: 'finished',
        enqueuedAt: at,
        spec: { resource: 'local-process', overrides: { entry_point: ['python', 'train.py', '--lr', '0.1'] }, env: { SEED: String(i) } },
        claimedBy: 'host-abcd1234',
        claimedPid: 4242,
        claimedHost: 'host',
        claimedAt: at,
        leaseUntil: at,
        ackedAt: at,
        runId: `run${i}`,
        warnings: [],
        finishedAt: at,
        runState: 'finished',
        exitCode: 0,
        attempts: 1,
      };
      files.push({ path: join(paths.done('q'), `${base}.json`), text: JSON.stringify(record) });
    }
    const legacyIds: string[] = [];
    for (let i = 0; i < LEGACY; i++) {
      const id = randomId(12);
      legacyIds.push(id);
      const ms = start - 3600_000 + i;
      const record = {
        v: 1,
        id,
        queue: 'q',
        priority: 'medium',
        state: 'finished',
        enqueuedAt: new Date(ms).toISOString(),
        spec: {},
        warnings: [],
        attempts: 1,
      };
      files.push({ path: join(paths.done('q'), `2-${String(ms).padStart(14, '0')}-000000-${id}.json`), text: JSON.stringify(record) });
    }
    const fill = await timed(() =>
      lanes(files, 64, async (f) => {
        await writeFile(f.path, f.text);
        const t = (Date.now() - 10 * 60_000) / 1000;
        await utimes(f.path, t, t);
      }),
    );
    process.stdout.write(`wrote ${files.length} finished records in ${round(fill.ms / 1000, 1)} s\n`);

    const queue = createEmbeddedQueue({ stateDir: dir, fsync: false });
    const { id: agent } = await queue.register({ queues: ['q'], hostname: 'bench', version: 'bench', config: {} });
    const queued: string[] = [];
    for (let i = 0; i < 10; i++) queued.push((await queue.enqueue({ queue: 'q', spec: { i } })).id);

    const pick = (list: string[], i: number) => list[(i * 7919) % list.length]!;
    const getDone = await samples(200, (i) =>
      queue.get(pick(ids, i)).then((r) => {
        if (r?.state !== 'finished') throw new Error('get(id) missed a finished item');
      }),
    );
    const getQueued = await samples(200, (i) =>
      queue.get(pick(queued, i)).then((r) => {
        if (r?.state !== 'queued') throw new Error('get(id) missed a queued item');
      }),
    );
    const getScan = await samples(5, (i) =>
      queue.get(pick(legacyIds, i)).then((r) => {
        if (r?.state !== 'finished') throw new Error('get(old id) missed');
      }),
    );
    const countsBefore = await samples(5, () => queue.counts());
    const listBefore = await timed(() => queue.list());

    // pop latency with no prune running (each popped item is released back).
    const popOnce = async () => {
      const item = await queue.pop('q', agent);
      if (!item) throw new Error('nothing to pop');
      await queue.release(item);
    };
    const popIdle = await samples(50, popOnce);
    let pruneDone = false;
    const prune = timed(() => queue.prune()).finally(() => (pruneDone = true));
    const popDuring: number[] = [];
    while (!pruneDone) popDuring.push((await timed(popOnce)).ms);
    const pruned = await prune;

    const countsAfter = await samples(5, () => queue.counts());
    const listAfter = await timed(() => queue.list());
    const getDoneAfter = await samples(200, (i) => queue.get(pick(ids.slice(-10_000), i)));
    await queue.close();

    const d = (v: number[]) => distribution(v, 3);
    const rows = [
      ['get(id), finished item (by name)', d(getDone).p50, d(getDone).p99, 'ms'],
      ['get(id), queued item (by name)', d(getQueued).p50, d(getQueued).p99, 'ms'],
      ['get(id), old-format id (full listing: before)', d(getScan).p50, d(getScan).max, 'ms'],
      [`counts(), ${listBefore.value.length} records`, d(countsBefore).p50, d(countsBefore).max, 'ms'],
      [`list() (status), ${listBefore.value.length} records`, round(listBefore.ms, 1), '', 'ms'],
      [`prune(): removed ${pruned.value}`, round(pruned.ms, 1), '', 'ms'],
      ['pop + release, no prune running', d(popIdle).p50, d(popIdle).p99, 'ms'],
      [`pop + release, during the prune (${popDuring.length} pops)`, d(popDuring).p50, d(popDuring).max, 'ms'],
      [`counts(), ${listAfter.value.length} records`, d(countsAfter).p50, d(countsAfter).max, 'ms'],
      [`list() (status), ${listAfter.value.length} records`, round(listAfter.ms, 1), '', 'ms'],
      ['get(id), finished item, after pruning', d(getDoneAfter).p50, d(getDoneAfter).p99, 'ms'],
    ];
    process.stdout.write(`${formatTable([['operation', 'p50 / once', 'p99 / max', ''], ...rows])}\n`);
    const result = {
      items: ITEMS,
      legacyItems: LEGACY,
      getFinishedMs: d(getDone),
      getQueuedMs: d(getQueued),
      getFullScanMs: d(getScan),
      getSpeedup: round(d(getScan).p50 / d(getDone).p50, 0),
      countsBeforeMs: d(countsBefore),
      listBefore: { records: listBefore.value.length, ms: round(listBefore.ms, 1) },
      prune: { removed: pruned.value, ms: round(pruned.ms, 1) },
      popIdleMs: d(popIdle),
      popDuringPruneMs: d(popDuring),
      countsAfterMs: d(countsAfter),
      listAfter: { records: listAfter.value.length, ms: round(listAfter.ms, 1) },
      getFinishedAfterMs: d(getDoneAfter),
      summary: [
        {
          benchmark: 'queue-scale',
          figure: `get(id) p50 with ${ITEMS} finished: by name / full scan`,
          value: `${d(getDone).p50} / ${d(getScan).p50} ms`,
          target: '',
          met: undefined,
        },
        {
          benchmark: 'queue-scale',
          figure: 'status list(): before / after retention',
          value: `${round(listBefore.ms, 0)} ms (${listBefore.value.length}) / ${round(listAfter.ms, 0)} ms (${listAfter.value.length})`,
          target: '',
          met: undefined,
        },
        { benchmark: 'queue-scale', figure: 'pop p50 idle / during prune', value: `${d(popIdle).p50} / ${d(popDuring).p50} ms`, target: '', met: undefined },
      ],
    };
    const path = writeResult('queue-scale', result);
    process.stdout.write(`${JSON.stringify(result)}\nwritten to ${path}\n`);
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, run);
