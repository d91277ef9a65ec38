import type { ItemRecord } from '@launch/core';
import type { Palette } from './color.js';
import { formatAge } from './time.js';

/** One line saying how an item ended (or where it is). */
export function describeResult(item: ItemRecord, c: Palette): string {
  if (item.state === 'failed') {
    const f = item.failure;
    return `${c.red('failed')}${f ? ` at stage ${f.stage}: ${firstLine(f.message)}` : ''}${item.exitCode == null ? '' : ` (exit ${item.exitCode})`}`;
  }
  if (item.state === 'finished') {
    const state = item.runState ?? 'finished';
    const paint = state === 'finished' && (item.exitCode ?? 0) === 0 ? c.green : c.red;
    return `${paint(state)}${item.exitCode == null ? '' : ` (exit ${item.exitCode})`}`;
  }
  return item.state;
}

/** The RESULT column: exit code, or failure stage and message. */
export function resultCell(item: ItemRecord, c: Palette, width = 60): string {
  if (item.state === 'failed' && item.failure) {
    return c.red(truncate(`${item.failure.stage}: ${firstLine(item.failure.message)}`, width));
  }
  if (item.exitCode != null) return (item.exitCode === 0 ? c.green : c.red)(`exit ${item.exitCode}`);
  if (item.state === 'finished' && item.runState && item.runState !== 'finished') return c.yellow(item.runState);
  return '';
}

export const ITEM_HEADERS = ['ID', 'QUEUE', 'PRIORITY', 'STATE', 'RUN', 'HELD BY', 'AGE', 'RESULT', 'WARN'];

/**
 * One row of the items table. `alive` says whether an agent id is a live process (undefined: unknown, e.g. on
 * another host), so a claim still held by a dead agent shows as such until another agent takes it over.
 */
export function itemRow(item: ItemRecord, c: Palette, now: number, alive: (agentId: string) => boolean | undefined = () => undefined): string[] {
  const paint = item.state === 'finished' ? c.green : item.state === 'failed' ? c.red : item.state === 'queued' ? c.dim : c.blue;
  const held = (item.state === 'claimed' || item.state === 'acked') && item.claimedBy;
  const holder = held ? (alive(item.claimedBy!) === false ? c.red(`${item.claimedBy} (gone)`) : item.claimedBy!) : '-';
  return [
    item.id,
    item.queue,
    String(item.priority ?? '-'),
    paint(item.state),
    item.runId ?? '-',
    holder,
    formatAge(item.enqueuedAt, now),
    resultCell(item, c),
    item.warnings.length > 0 ? c.yellow(String(item.warnings.length)) : '0',
  ];
}

function firstLine(s: string): string {
  return (
    s
      .split('\n')
      .find((l) => l.trim() !== '')
      ?.trim() ?? ''
  );
}

function truncate(s: string, width: number): string {
  return s.length <= width ? s : `${s.slice(0, width - 1)}…`;
}
