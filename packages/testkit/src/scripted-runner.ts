import type { RunRequest, RunStatus, Runner, SubmittedRun } from '@launch/core';

/** What a scripted run does: a sequence of states, each held for `ms` (default 0). */
export interface ScriptStep {
  state: RunStatus['state'];
  ms?: number;
  messages?: string[];
  exitCode?: number;
  diagnosis?: RunStatus['diagnosis'];
}

/**
 * A Runner whose runs follow a script chosen per request. It exists to drive the agent through states
 * that real local processes cannot produce (`preempted`, stuck in `starting`, diagnosis messages).
 * Tests that can use real processes use the local-process runner instead.
 */
export interface ScriptedRunner extends Runner {
  /** Every request received, in order. */
  readonly requests: RunRequest[];
  /** Runs currently not terminal. */
  active(): number;
  /** Highest number of runs that were active at the same time. */
  readonly peak: number;
  /** Cancels received, by run id. */
  readonly cancels: string[];
  /** Run ids whose end the agent said it recorded (`SubmittedRun.reported`). */
  readonly reported: string[];
}

export function createScriptedRunner(options: {
  resources?: string[];
  remote?: boolean;
  /** Picks the script for a request; default: running for 10 ms then finished. */
  script?: (request: RunRequest, index: number) => ScriptStep[];
  /** Make `run()` itself throw for some requests. */
  failSubmit?: (request: RunRequest) => Error | undefined;
  /** Declare the `adopt` capability (adopt() finds nothing; attach-only requests are answered by `script`). */
  adopt?: boolean;
  /** Declare the `needsImage` capability, so the agent builds an image for jobs without one. */
  needsImage?: boolean;
  /** Declare the `mountsCode` capability (a W&B job's code mounted into a base image). */
  mountsCode?: boolean;
  /** The runner's `warningStage` (unset: the agent reports warnings under its name, `scripted`). */
  warningStage?: string;
}): ScriptedRunner {
  const requests: RunRequest[] = [];
  const reported: string[] = [];
  const cancels: string[] = [];
  let activeCount = 0;
  let peak = 0;
  const runner: ScriptedRunner = {
    specificationVersion: 'v1',
    name: 'scripted',
    ...(options.warningStage !== undefined ? { warningStage: options.warningStage } : {}),
    resources: options.resources ?? ['scripted'],
    capabilities: {
      adopt: options.adopt ?? false,
      remote: options.remote ?? false,
      needsImage: options.needsImage ?? false,
      mountsCode: options.mountsCode ?? false,
    },
    ...(options.adopt ? { adopt: async () => [] } : {}),
    requests,
    cancels,
    reported,
    active: () => activeCount,
    get peak() {
      return peak;
    },
    async run(request) {
      const index = requests.length;
      requests.push(request);
      const err = options.failSubmit?.(request);
      if (err) throw err;
      const steps = options.script?.(request, index) ?? [
        { state: 'running', ms: 10 },
        { state: 'finished', exitCode: 0 },
      ];
      activeCount++;
      peak = Math.max(peak, activeCount);
      let current: RunStatus = { state: 'starting', messages: [] };
      const listeners = new Set<(s: RunStatus) => void>();
      let timer: NodeJS.Timeout | undefined;
      let resolveDone!: (s: RunStatus) => void;
      const done = new Promise<RunStatus>((r) => (resolveDone = r));
      const set = (s: RunStatus) => {
        current = s;
        for (const l of listeners) l(s);
        if (['finished', 'failed', 'stopped', 'preempted'].includes(s.state)) {
          activeCount--;
          if (timer) clearTimeout(timer);
          resolveDone(s);
        }
      };
      let i = 0;
      const next = () => {
        const step = steps[i++];
        if (!step) return;
        set({ state: step.state, messages: step.messages ?? [], exitCode: step.exitCode, diagnosis: step.diagnosis });
        if (!['finished', 'failed', 'stopped', 'preempted'].includes(step.state)) timer = setTimeout(next, step.ms ?? 0);
      };
      setImmediate(next);
      let cancelled = false;
      const run: SubmittedRun = {
        id: `scripted-${index}`,
        runId: request.runId,
        itemId: request.itemId,
        status: async () => current,
        onStatus(l) {
          listeners.add(l);
          return () => listeners.delete(l);
        },
        logs: async () => '',
        wait: () => done,
        async cancel() {
          if (cancelled) return;
          cancelled = true;
          cancels.push(request.runId);
          if (timer) clearTimeout(timer);
          setImmediate(() => set({ state: 'stopped', messages: [] }));
        },
        async reported() {
          reported.push(request.runId);
        },
      };
      return run;
    },
  };
  return runner;
}
