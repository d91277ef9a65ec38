import type { AgentRecord, ItemRecord } from '@launch/core';
import { describe, expect, it } from 'vitest';
import { renderStatus } from './status.js';

const io = { stdout: { isTTY: false } as NodeJS.WriteStream, env: { NO_COLOR: '1' } };
const at = '2026-01-01T00:00:00.000Z';
const now = Date.parse(at) + 60_000;

function item(id: string, extra: Partial<ItemRecord>): ItemRecord {
  return { id, queue: 'q', priority: 'medium', state: 'queued', enqueuedAt: at, spec: {}, warnings: [], attempts: 1, ...extra };
}

function agent(id: string, extra: Partial<AgentRecord>): AgentRecord {
  return { id, name: id, hostname: 'h', pid: 1, status: 'RUNNING', queues: ['q'], registeredAt: at, updatedAt: at, ...extra };
}

describe('status', () => {
  it('shows who holds each claim now: a dead agent as gone, holding only what no one took over', () => {
    const items = [
      item('i1', { state: 'acked', claimedBy: 'agent-new', runId: 'r1' }),
      item('i2', { state: 'acked', claimedBy: 'agent-old', runId: 'r2' }),
      item('i3', { state: 'finished', claimedBy: 'agent-old', runId: 'r3', exitCode: 0 }),
    ];
    const agents = [agent('agent-old', { alive: false, pid: 11 }), agent('agent-new', { alive: true, pid: 12 })];
    const text = renderStatus(items, agents, io, '/state', now);
    const lines = text.split('\n');
    const row = (id: string) => lines.find((l) => l.startsWith(id))!;
    expect(row('i1')).toContain('agent-new');
    expect(row('i1')).not.toContain('(gone)');
    expect(row('i2')).toContain('agent-old (gone)');
    // An ended item is held by no one.
    expect(row('i3')).toMatch(/\s-\s/);
    expect(row('i3')).not.toContain('agent-old');
    const old = lines.find((l) => l.startsWith('agent-old'))!;
    expect(old).toContain('gone (last reported RUNNING)');
    expect(old).toMatch(/gone \(last reported RUNNING\)\s+1\s/);
    const fresh = lines.find((l) => l.startsWith('agent-new'))!;
    expect(fresh).toMatch(/RUNNING\s+1\s/);
  });
});
