import type { ObservedAgent } from './options.js';
import type { PendingPop } from './instrument-source.js';

/** The JSON body of `/healthz` and `/readyz`. */
export interface HealthReport {
  /** 200 when true, 503 otherwise. */
  ok: boolean;
  status: 'ok' | 'ready' | 'starting' | 'verifying' | 'unverified' | 'stopping' | 'stopped' | 'stale' | 'wedged';
  /** Why the check fails (or what it waits for). */
  reason?: string;
  agent: { status: string; name?: string; running: number; maxJobs: number };
  /** Seconds since the agent loop last proved alive. */
  lastLoopSecondsAgo: number;
  /** `/healthz` fails beyond this many seconds without a loop turn. */
  staleAfterSeconds: number;
  /** `/readyz`: each backend check, `ok`, `pending` or why it failed. */
  checks?: Record<string, string>;
}

export interface HealthProbe {
  /** Liveness: the agent loop turns (not wedged) and the agent has not stopped. */
  liveness(): HealthReport;
  /** Readiness: registered with its queue source and serving, not stopping. */
  readiness(): HealthReport;
  /** When the loop last proved alive (ms), or undefined before it ever did. */
  lastLoopAt(): number | undefined;
  /** Stops listening to the agent. */
  close(): void;
}

export interface HealthProbeOptions {
  agent: ObservedAgent;
  staleAfterMs: number;
  now: () => number;
  /** Pops still under way (from an instrumented source): one older than `staleAfterMs` wedges the loop. */
  pendingPops?: () => PendingPop[];
}

const round = (ms: number) => Math.round(ms / 100) / 10;

/**
 * Judges the agent's health from its public events. The loop proves it turns by `agent:poll` (each pop
 * round) and `agent:status` (emitted at least every two poll intervals as a keep-alive, and on every
 * change); `agent:registered` and `agent:idle` count too. Readiness comes from `snapshot().status`.
 */
export function createHealthProbe(options: HealthProbeOptions): HealthProbe {
  const { agent, staleAfterMs, now } = options;
  const createdAt = now();
  let lastBeat: number | undefined;
  let stoppedReason: string | undefined;
  const beat = () => {
    lastBeat = now();
  };
  const offs = [
    agent.on('agent:poll', beat),
    agent.on('agent:status', beat),
    agent.on('agent:registered', beat),
    agent.on('agent:idle', beat),
    agent.on('agent:stopped', ({ reason }) => {
      stoppedReason = reason;
    }),
  ];

  const base = () => {
    const s = agent.snapshot();
    const since = lastBeat ?? createdAt;
    return {
      snapshot: s,
      since,
      fields: {
        agent: { status: s.status, ...(s.name ? { name: s.name } : {}), running: s.running.length, maxJobs: s.maxJobs },
        lastLoopSecondsAgo: round(Math.max(0, now() - since)),
        staleAfterSeconds: round(staleAfterMs),
      },
    };
  };

  return {
    liveness() {
      const { snapshot, since, fields } = base();
      if (stoppedReason !== undefined) {
        return { ok: false, status: 'stopped', reason: `the agent stopped${stoppedReason ? `: ${stoppedReason}` : ''}`, ...fields };
      }
      const stuck = options.pendingPops?.().find((p) => p.ageMs > staleAfterMs);
      if (stuck) {
        return {
          ok: false,
          status: 'wedged',
          reason: `a pop from queue "${stuck.queue}" has not returned for ${round(stuck.ageMs)} s (limit ${round(staleAfterMs)} s)`,
          ...fields,
        };
      }
      const age = now() - since;
      if (age > staleAfterMs) {
        const reason =
          snapshot.status === 'STARTING'
            ? `the agent has not finished starting after ${round(age)} s (limit ${round(staleAfterMs)} s)`
            : `the agent loop has not turned for ${round(age)} s (limit ${round(staleAfterMs)} s)`;
        return { ok: false, status: 'stale', reason, ...fields };
      }
      if (snapshot.status === 'STARTING') return { ok: true, status: 'starting', ...fields };
      // Stopping: the loop has ended and local runs are being terminated; alive until `agent:stopped`.
      if (snapshot.status === 'KILLED' || snapshot.status === 'STOPPED') return { ok: true, status: 'stopping', ...fields };
      return { ok: true, status: 'ok', ...fields };
    },

    readiness() {
      const { snapshot, fields } = base();
      if (stoppedReason !== undefined) {
        return { ok: false, status: 'stopped', reason: `the agent stopped${stoppedReason ? `: ${stoppedReason}` : ''}`, ...fields };
      }
      if (snapshot.status === 'STARTING') {
        return { ok: false, status: 'starting', reason: 'the agent has not registered with its queue source and started its loop yet', ...fields };
      }
      if (snapshot.status === 'KILLED' || snapshot.status === 'STOPPED') {
        return { ok: false, status: 'stopping', reason: 'the agent is stopping: it takes no more work', ...fields };
      }
      return { ok: true, status: 'ready', ...fields };
    },

    lastLoopAt: () => lastBeat,

    close() {
      for (const off of offs) off();
    },
  };
}
