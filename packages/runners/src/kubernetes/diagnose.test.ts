import { describe, expect, it } from 'vitest';
import { diagnosePod, podExitCode, unschedulableReason } from './diagnose.js';
import { customState, jobTerminalState, podState } from './state.js';

const pod = (status: Record<string, unknown>) => ({ metadata: { name: 'p1' }, status });
const waiting = (reason: string, message?: string, extra: Record<string, unknown> = {}) =>
  pod({ phase: 'Pending', containerStatuses: [{ name: 'c', image: 'ghcr.io/acme/nope:1', state: { waiting: { reason, message } }, ...extra }] });

describe('diagnosePod', () => {
  it.each(['ErrImagePull', 'ImagePullBackOff'])('%s is an ImagePullError naming the image', (reason) => {
    const d = diagnosePod(waiting(reason, 'pull access denied'));
    expect(d?.category).toBe('ImagePullError');
    expect(d?.message).toContain('ghcr.io/acme/nope:1');
    expect(d?.message).toContain(reason);
    expect(d?.hint).toContain('ghcr.io/acme/nope:1');
  });

  it('CrashLoopBackOff with restart count and last exit code', () => {
    const d = diagnosePod(
      pod({
        phase: 'Running',
        containerStatuses: [
          { name: 'c', restartCount: 4, state: { waiting: { reason: 'CrashLoopBackOff' } }, lastState: { terminated: { exitCode: 3, reason: 'Error' } } },
        ],
      }),
    );
    expect(d?.category).toBe('CrashLoopBackOff');
    expect(d?.message).toMatch(/restarted 4 times, last exit code 3/);
  });

  it('OOMKilled', () => {
    const d = diagnosePod(pod({ phase: 'Failed', containerStatuses: [{ name: 'c', state: { terminated: { exitCode: 137, reason: 'OOMKilled' } } }] }));
    expect(d?.category).toBe('OOMKilled');
    expect(d?.hint).toMatch(/memory limit/);
  });

  it('Evicted', () => {
    const d = diagnosePod(pod({ phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.' }));
    expect(d?.category).toBe('Evicted');
    expect(d?.message).toContain('low on resource');
  });

  it('preemption from the DisruptionTarget condition', () => {
    const p = pod({ phase: 'Running', conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'PreemptionByScheduler', message: 'preempting' }] });
    expect(diagnosePod(p)?.category).toBe('Preempted');
    expect(podState(p)).toBe('preempted');
  });

  it.each([
    ['0/3 nodes are available: 3 Insufficient nvidia.com/gpu.', 'InsufficientResources', /nvidia.com\/gpu/],
    ["0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.", 'NodeAffinity', /affinity/],
    ['0/1 nodes are available: 1 node(s) had untolerated taint {gpu: true}.', 'Taint', /tolerations/],
  ])('Unschedulable: %s', (message, kind, hint) => {
    const d = diagnosePod(pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message }] }));
    expect(d?.category).toBe('Unschedulable');
    expect(d?.message).toContain(kind);
    expect(d?.message).toContain(message);
    expect(d?.hint).toMatch(hint);
    expect(unschedulableReason(message).kind).toBe(kind);
  });

  it('a healthy pod has no diagnosis', () => {
    expect(diagnosePod(pod({ phase: 'Running', containerStatuses: [{ name: 'c', state: { running: {} } }] }))).toBeUndefined();
  });

  it('exit codes', () => {
    expect(podExitCode(pod({ containerStatuses: [{ state: { terminated: { exitCode: 0 } } }, { state: { terminated: { exitCode: 2 } } }] }))).toBe(2);
    expect(podExitCode(pod({ containerStatuses: [{ state: { terminated: { exitCode: 0 } } }] }))).toBe(0);
    expect(podExitCode(pod({ containerStatuses: [{ state: { running: {} } }] }))).toBeUndefined();
  });
});

describe('state mapping', () => {
  it('pods: pending and ContainerCreating are starting (so the start timeout fires), Running is running', () => {
    expect(podState(waiting('ContainerCreating'))).toBe('starting');
    expect(podState(pod({ phase: 'Pending' }))).toBe('starting');
    expect(podState(pod({ phase: 'Running' }))).toBe('running');
  });

  it('jobs: conditions first, then counts against completions and backoffLimit', () => {
    expect(jobTerminalState({ status: { conditions: [{ type: 'Complete', status: 'True' }] } })?.state).toBe('finished');
    expect(jobTerminalState({ status: { conditions: [{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'x' }] } })).toEqual({
      state: 'failed',
      message: 'Job failed (BackoffLimitExceeded): x',
    });
    expect(jobTerminalState({ spec: { backoffLimit: 1 }, status: { failed: 1 } })).toBeUndefined();
    expect(jobTerminalState({ spec: { backoffLimit: 0 }, status: { failed: 1 } })?.state).toBe('failed');
    expect(jobTerminalState({ status: { succeeded: 1 } })?.state).toBe('finished');
    expect(jobTerminalState({ status: { active: 1 } })).toBeUndefined();
  });

  it('custom resources: Volcano phase, Kubeflow conditions, JobSet replicated status', () => {
    expect(customState({ status: { state: { phase: 'Pending' } } })).toBe('starting');
    expect(customState({ status: { state: { phase: 'Running' } } })).toBe('running');
    expect(customState({ status: { state: { phase: 'Completed' } } })).toBe('finished');
    expect(customState({ status: { state: { phase: 'Aborted' } } })).toBe('failed');
    expect(customState({ status: { state: { phase: 'Terminating' } } })).toBe('stopping');
    const kf = (types: string[]) => ({ status: { conditions: types.map((type) => ({ type, status: 'True' })) } });
    expect(customState(kf(['Created', 'Running']))).toBe('running');
    expect(customState(kf(['Created', 'Running', 'Succeeded']))).toBe('finished');
    expect(customState(kf(['Running', 'Failed']))).toBe('failed');
    expect(customState({ status: { conditions: [{ type: 'Succeeded', status: 'False' }] } })).toBe('starting');
    expect(customState({ status: { replicatedJobsStatus: [{ ready: 1 }] } })).toBe('running');
    expect(customState({ status: { replicatedJobsStatus: [{ active: 1, ready: 0 }] } })).toBe('starting');
  });
});
