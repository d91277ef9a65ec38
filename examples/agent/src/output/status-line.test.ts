import type { AgentSnapshot, QueueItem } from '@launch/core';
import { describe, expect, it } from 'vitest';
import { statusIntervalMs, statusLine } from './status-line.js';

const item: QueueItem = { id: 'i1', queue: 'q', spec: {} };
const agent = (snap: Partial<AgentSnapshot>) => ({
  snapshot: (): AgentSnapshot => ({ status: 'POLLING', running: [], maxJobs: 1, maxSchedulers: 1, name: 'a1', ...snap }),
});

describe('status line', () => {
  it("reads like W&B's", () => {
    expect(statusLine(agent({}), ['q'], 'human')).toBe('launch: agent a1 polling on queues q, running 0 out of a maximum of 1 jobs');
    expect(
      statusLine(
        agent({ status: 'RUNNING', maxJobs: -1, running: [{ item, runId: 'r', state: 'running', scheduler: false, startedAt: 0 }] }),
        ['q', 'p'],
        'human',
      ),
    ).toBe('launch: agent a1 polling on queues q, p, running 1 out of a maximum of unlimited jobs');
  });

  it('is one JSON object in json format', () => {
    expect(JSON.parse(statusLine(agent({}), ['q'], 'json', 0))).toEqual({
      time: '1970-01-01T00:00:00.000Z',
      event: 'agent:state',
      status: 'POLLING',
      queues: ['q'],
      running: [],
      maxJobs: 1,
    });
  });

  it('prints every 300 s, every 20 s with -v', () => {
    expect([0, 1, 2].map(statusIntervalMs)).toEqual([300_000, 20_000, 20_000]);
  });
});
