import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryQueue, waitFor } from '@launch/testkit';
import type { LogChunk, RunStatus, Runner, SubmittedRun } from '../contracts/runner.js';
import { REDACTED, Redactor } from '../redact.js';
import { createAgent } from './create-agent.js';
import type { Agent } from './types.js';

const agents: Agent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop('test over')));
});

/** A runner whose runs print `line` once running and end when the test calls `end(itemId)`. */
function heldRunner(line: (env: Record<string, string>) => string) {
  const enders = new Map<string, () => void>();
  const runner: Runner = {
    specificationVersion: 'v1',
    name: 'held',
    resources: ['held'],
    capabilities: { adopt: false, remote: false, needsImage: false },
    async run(request) {
      const statusListeners = new Set<(s: RunStatus) => void>();
      const logListeners = new Set<(c: LogChunk) => void>();
      let current: RunStatus = { state: 'running', messages: [] };
      let resolve!: (s: RunStatus) => void;
      const done = new Promise<RunStatus>((r) => (resolve = r));
      const set = (s: RunStatus) => {
        current = s;
        for (const l of statusListeners) l(s);
        if (s.state !== 'running') resolve(s);
      };
      enders.set(request.itemId, () => set({ state: 'finished', messages: [], exitCode: 0 }));
      setImmediate(() => {
        set({ state: 'running', messages: [] });
        for (const l of logListeners) l({ stream: 'stdout', text: `${line(request.env)}\n` });
      });
      const run: SubmittedRun = {
        id: request.itemId,
        runId: request.runId,
        itemId: request.itemId,
        status: async () => current,
        onStatus: (l) => (statusListeners.add(l), () => void statusListeners.delete(l)),
        onLog: (l) => (logListeners.add(l), () => void logListeners.delete(l)),
        logs: async () => '',
        wait: () => done,
        cancel: async () => set({ state: 'stopped', messages: [] }),
      };
      return run;
    },
  };
  return { runner, end: (itemId: string) => enders.get(itemId)?.() };
}

describe('per-job redaction in the agent', () => {
  it("redacts a running job's secret in its logs, in agent errors and in agent-wide output, then forgets it", async () => {
    const source = createMemoryQueue();
    const jobKey = 'job-only-secret-0123456789';
    const agentKey = 'agent-wide-secret-987654';
    const redactor = new Redactor();
    const { runner, end } = heldRunner((env) => `training with key ${env.HF_TOKEN}`);
    const agent = createAgent({
      source,
      queues: ['q'],
      runners: [runner],
      defaultResource: 'held',
      monitorIntervalMs: 20,
      env: { WANDB_API_KEY: agentKey },
      redactor,
    });
    agents.push(agent);
    const logs: string[] = [];
    const errors: string[] = [];
    agent.on('run:log', ({ chunk }) => logs.push(chunk.text));
    agent.on('agent:error', ({ error, where }) => errors.push(`${where}: ${error.message}`));
    // A listener that fails while the job runs, quoting the secret: the agent reports it as agent:error.
    agent.on('run:submitted', () => {
      throw new Error(`listener saw ${jobKey}`);
    });
    const id = source.enqueue('q', { entity: 'e', project: 'p', env: { HF_TOKEN: jobKey } });
    await agent.start();

    await waitFor(() => logs.length > 0 && errors.length > 0, { what: 'the job to log and the listener error' });
    expect(logs.join('')).toBe(`training with key ${REDACTED}\n`);
    expect(errors.join('\n')).toContain(`listener saw ${REDACTED}`);
    expect(errors.join('\n')).not.toContain(jobKey);
    // Agent-wide output (a CLI sink sharing the redactor) hides the running job's secret.
    expect(redactor.has(jobKey)).toBe(true);
    expect(redactor.redact(`x ${jobKey} ${agentKey}`)).toBe(`x ${REDACTED} ${REDACTED}`);

    end(id);
    await waitFor(() => agent.snapshot().running.length === 0, { what: 'the job to end' });
    expect(redactor.has(jobKey)).toBe(false);
    expect(redactor.has(agentKey)).toBe(true);
    expect(redactor.size).toBe(1);
  });

  it('refuses a redactor option that is not a Redactor, naming it', () => {
    const source = createMemoryQueue();
    const { runner } = heldRunner(() => '');
    expect(() => createAgent({ source, queues: ['q'], runners: [runner], redactor: {} as Redactor })).toThrow(/redactor must be a Redactor/);
  });
});
