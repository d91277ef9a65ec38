import type { Diagnosis } from '@launch/core';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Pod-disruption reasons W&B treats as preemption. */
export const PREEMPTION_REASONS = new Set(['EvictionByEvictionAPI', 'PreemptionByScheduler', 'TerminationByKubelet']);

const IMAGE_PULL = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull']);
const CONFIG_ERRORS = new Set(['CreateContainerConfigError', 'CreateContainerError', 'RunContainerError']);

function statuses(pod: Obj): Obj[] {
  const s = pod?.status ?? {};
  return [...(s.initContainerStatuses ?? []), ...(s.containerStatuses ?? [])].filter((x: unknown) => x && typeof x === 'object');
}

function condition(pod: Obj, type: string): Obj | undefined {
  const list = pod?.status?.conditions;
  return Array.isArray(list) ? list.find((c: Obj) => c?.type === type) : undefined;
}

/** The pod's `DisruptionTarget=True` condition when its reason is one W&B counts as preemption. */
export function disruption(pod: Obj): Obj | undefined {
  const c = condition(pod, 'DisruptionTarget');
  return c && c.status === 'True' && PREEMPTION_REASONS.has(c.reason) ? c : undefined;
}

/** Why the scheduler cannot place the pod, from the `PodScheduled=False/Unschedulable` message. */
export function unschedulableReason(message: string): { kind: 'InsufficientResources' | 'NodeAffinity' | 'Taint' | 'Other'; hint: string } {
  const insufficient = [...message.matchAll(/Insufficient ([A-Za-z0-9./_-]+)/g)].map((m) => m[1]);
  if (insufficient.length > 0) {
    return {
      kind: 'InsufficientResources',
      hint: `no node has enough ${[...new Set(insufficient)].join(', ')} free: lower the job's resource requests, wait for capacity, or add nodes`,
    };
  }
  if (/node affinity|node selector|nodeAffinity|nodeSelector/i.test(message)) {
    return {
      kind: 'NodeAffinity',
      hint: "no node matches the job's nodeSelector/affinity: check the node labels it requires (e.g. gpu.nvidia.com/class, region)",
    };
  }
  if (/taint/i.test(message)) {
    return { kind: 'Taint', hint: 'the nodes carry taints the job does not tolerate: add matching tolerations or use other nodes' };
  }
  return { kind: 'Other', hint: "check the scheduler's message above and the cluster's capacity (kubectl describe pod)" };
}

/**
 * A stable diagnosis of what is wrong with a pod (Prefect-style), or undefined when nothing is.
 * Ordered by what a user must fix first: preemption/eviction, image pulls, config errors, crash loops,
 * OOM kills, scheduling.
 */
export function diagnosePod(pod: Obj): Diagnosis | undefined {
  const name = pod?.metadata?.name ?? 'the pod';
  const target = disruption(pod);
  if (pod?.status?.reason === 'Evicted') {
    return {
      category: 'Evicted',
      message: `pod ${name} was evicted: ${pod.status.message ?? target?.message ?? 'no reason given'}`,
      hint: 'the node ran short of memory or disk: set resource requests equal to limits, or use nodes with more headroom',
    };
  }
  if (target) {
    return {
      category: 'Preempted',
      message: `pod ${name} was preempted (${target.reason}): ${target.message ?? ''}`.trim(),
      hint: 'the run is requeued with the same run id; use a non-preemptible node pool or a higher priority class to avoid it',
    };
  }
  for (const s of statuses(pod)) {
    const waiting = s.state?.waiting;
    if (waiting && IMAGE_PULL.has(waiting.reason)) {
      const image = s.image ?? '';
      return {
        category: 'ImagePullError',
        message: `cannot pull image "${image}" for container ${s.name} (${waiting.reason})${waiting.message ? `: ${waiting.message}` : ''}`,
        hint: `check that the image "${image}" exists (name and tag) and that the cluster may pull it: add imagePullSecrets or configure the registry`,
      };
    }
  }
  for (const s of statuses(pod)) {
    const waiting = s.state?.waiting;
    if (waiting && CONFIG_ERRORS.has(waiting.reason)) {
      return {
        category: 'InvalidSpec',
        message: `container ${s.name} cannot be created (${waiting.reason})${waiting.message ? `: ${waiting.message}` : ''}`,
        hint: 'check the secrets, config maps and volumes the job references exist in its namespace',
      };
    }
  }
  for (const s of statuses(pod)) {
    const waiting = s.state?.waiting;
    if (waiting?.reason === 'CrashLoopBackOff') {
      const last = s.lastState?.terminated;
      const oom = last?.reason === 'OOMKilled';
      return {
        category: oom ? 'OOMKilled' : 'CrashLoopBackOff',
        message: `container ${s.name} keeps crashing (restarted ${s.restartCount ?? 0} times${last ? `, last exit code ${last.exitCode}${oom ? ', OOMKilled' : ''}` : ''})`,
        hint: oom
          ? "raise the container's memory limit or reduce the job's memory use"
          : 'the container exits right after it starts: read its log (the tail is attached) and fix the entry point or its config',
      };
    }
  }
  for (const s of statuses(pod)) {
    const term = s.state?.terminated ?? s.lastState?.terminated;
    if (term?.reason === 'OOMKilled') {
      return {
        category: 'OOMKilled',
        message: `container ${s.name} was killed for using more memory than its limit (exit code ${term.exitCode ?? 137})`,
        hint: "raise the container's memory limit (resources.limits.memory) or reduce the job's memory use",
      };
    }
  }
  const init = failedInitContainer(pod);
  if (init) {
    const term = init.state.terminated;
    const code = init.name === 'wandb-source-code-init';
    return {
      category: 'NonZeroExit',
      message: `init container ${init.name} of pod ${name} exited with code ${term.exitCode}${term.reason ? ` (${term.reason})` : ''}${code ? ": the job's code could not be fetched" : ''}`,
      hint: code
        ? "read the init container's log (the tail is attached): the W&B job, its code artifact or git remote, or the API key in the run's secret"
        : "read the init container's log (kubectl logs -c " + init.name + ') and fix its command or image',
    };
  }
  const scheduled = condition(pod, 'PodScheduled');
  if (scheduled && scheduled.status === 'False' && scheduled.reason === 'Unschedulable') {
    const message = String(scheduled.message ?? 'the scheduler gave no reason');
    const why = unschedulableReason(message);
    return { category: 'Unschedulable', message: `pod ${name} cannot be scheduled (${why.kind}): ${message}`, hint: why.hint };
  }
  return undefined;
}

/** The first init container that ended with a non-zero exit code (its pod's app containers never ran). */
export function failedInitContainer(pod: Obj): Obj | undefined {
  const list = pod?.status?.initContainerStatuses;
  if (!Array.isArray(list)) return undefined;
  return list.find((s: Obj) => typeof s?.state?.terminated?.exitCode === 'number' && s.state.terminated.exitCode !== 0);
}

/** The first non-zero exit code among a pod's containers, or 0 when all exited cleanly, or undefined. */
export function podExitCode(pod: Obj): number | undefined {
  let sawZero = false;
  for (const s of pod?.status?.containerStatuses ?? []) {
    const code = s?.state?.terminated?.exitCode;
    if (typeof code === 'number' && code !== 0) return code;
    if (code === 0) sawZero = true;
  }
  return sawZero ? 0 : undefined;
}

/** The diagnosis line the agent reports as a queue warning. */
export function diagnosisLine(d: Diagnosis): string {
  return `${d.category}: ${d.message} (hint: ${d.hint})`;
}
