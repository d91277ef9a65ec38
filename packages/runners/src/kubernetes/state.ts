import type { RunState } from '@launch/core';
import { disruption } from './diagnose.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * A pod's contribution to its run's state. Unlike W&B (which maps `ContainerCreating` to `running`), a pod that is
 * not running yet keeps the run `starting`, so the start timeout also covers stuck pulls and mounts.
 */
export function podState(pod: Obj): RunState {
  if (disruption(pod)) return 'preempted';
  switch (pod?.status?.phase) {
    case 'Running':
      return 'running';
    case 'Succeeded':
    case 'Failed':
      // A finished pod: the Job (or custom object) decides whether the run is over.
      return 'running';
    default:
      return 'starting';
  }
}

/** A Job's terminal state, or undefined while it may still run (retries within `backoffLimit` included). */
export function jobTerminalState(job: Obj): { state: 'finished' | 'failed'; message?: string } | undefined {
  const conditions: Obj[] = Array.isArray(job?.status?.conditions) ? job.status.conditions : [];
  const on = (type: string) => conditions.find((c) => c?.type === type && c?.status === 'True');
  if (on('Complete') || on('SuccessCriteriaMet')) return { state: 'finished' };
  const failed = on('Failed') ?? on('FailureTarget');
  if (failed) return { state: 'failed', message: failed.message ? `Job failed (${failed.reason}): ${failed.message}` : undefined };
  const status = job?.status ?? {};
  const completions = typeof job?.spec?.completions === 'number' ? job.spec.completions : 1;
  if (typeof status.succeeded === 'number' && status.succeeded >= completions) return { state: 'finished' };
  const backoffLimit = typeof job?.spec?.backoffLimit === 'number' ? job.spec.backoffLimit : 6;
  if (typeof status.failed === 'number' && status.failed > backoffLimit) return { state: 'failed' };
  return undefined;
}

/** W&B's `CRD_STATE_DICT`: custom-resource phases and condition types to run states. */
const CRD_STATES: Record<string, RunState> = {
  created: 'starting',
  pending: 'starting',
  inqueue: 'starting',
  running: 'running',
  restarting: 'running',
  completing: 'running',
  succeeded: 'finished',
  completed: 'finished',
  complete: 'finished',
  failed: 'failed',
  aborted: 'failed',
  timeout: 'failed',
  terminated: 'failed',
  terminating: 'stopping',
  aborting: 'stopping',
};

const PRIORITY: RunState[] = ['finished', 'failed', 'stopping', 'running', 'starting'];

/**
 * A custom resource's state: Volcano's `status.state.phase`, Kubeflow-style `status.conditions` (the most decisive
 * `True` condition wins: finished > failed > stopping > running > starting), or JobSet's replicated-job counts.
 */
export function customState(obj: Obj): RunState {
  const status = obj?.status ?? {};
  const phase = status.state?.phase ?? status.phase;
  if (typeof phase === 'string' && CRD_STATES[phase.toLowerCase()]) return CRD_STATES[phase.toLowerCase()]!;
  if (Array.isArray(status.conditions)) {
    const states = status.conditions
      .filter((c: Obj) => c?.status === 'True' && typeof c.type === 'string')
      .map((c: Obj) => CRD_STATES[String(c.type).toLowerCase()])
      .filter((s: RunState | undefined): s is RunState => s !== undefined);
    for (const s of PRIORITY) if (states.includes(s)) return s;
  }
  const replicated = status.replicatedJobsStatus ?? status.ReplicatedJobsStatus;
  if (Array.isArray(replicated)) {
    if (replicated.some((r: Obj) => (r?.ready ?? 0) >= 1)) return 'running';
    if (replicated.some((r: Obj) => (r?.active ?? 0) >= 1)) return 'starting';
  }
  return 'starting';
}
