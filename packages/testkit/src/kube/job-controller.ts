import type { Api } from './api.js';
import type { ResourceInfo } from './resources.js';
import type { Change } from './store.js';
import { kubeTime, type Json, type KubeObject } from './types.js';

interface JobState {
  succeeded: Set<string>;
  failed: Set<string>;
  deadlineTimer?: NodeJS.Timeout;
  ttlTimer?: NodeJS.Timeout;
  startedAt?: number;
}

export interface JobControllerOptions {
  api: Api;
  jobs: ResourceInfo;
  pods: ResourceInfo;
  timeScale: number;
}

function condition(type: string, reason: string, message: string, at: string): Json {
  return { type, status: 'True', lastProbeTime: at, lastTransitionTime: at, reason, message };
}

function isFinished(job: KubeObject): boolean {
  return (job.status?.conditions ?? []).some((c: Json) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
}

/**
 * The Job controller and the TTL-after-finished controller: creates pods from the template (with the job's labels and
 * an owner reference), counts successes and failures, applies backoffLimit and activeDeadlineSeconds, and writes the
 * status and conditions the way Kubernetes 1.31 does.
 */
export function startJobController({ api, jobs, pods, timeScale }: JobControllerOptions): () => void {
  const { store } = api;
  const states = new Map<string, JobState>();
  const queued = new Set<string>();
  let stopped = false;

  const stateOf = (uid: string) => {
    let s = states.get(uid);
    if (!s) states.set(uid, (s = { succeeded: new Set(), failed: new Set() }));
    return s;
  };

  const podsOf = (job: KubeObject) =>
    store
      .dependents(job.metadata.uid!)
      .filter((d) => d.resource === pods)
      .map((d) => d.object);

  const createPod = (job: KubeObject) => {
    const template = job.spec.template ?? {};
    const name = job.metadata.name!;
    api.create(pods, job.metadata.namespace, {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        generateName: `${name}-`,
        labels: { ...template.metadata?.labels },
        ...(template.metadata?.annotations ? { annotations: { ...template.metadata.annotations } } : {}),
        ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name, uid: job.metadata.uid!, controller: true, blockOwnerDeletion: true }],
      },
      spec: structuredClone(template.spec),
    });
  };

  const finish = (job: KubeObject, state: JobState, outcome: 'Complete' | 'Failed', reason: string, message: string) => {
    const at = kubeTime();
    for (const pod of podsOf(job)) {
      const phase = pod.status?.phase;
      if (phase !== 'Succeeded' && phase !== 'Failed' && !pod.metadata.deletionTimestamp) {
        try {
          api.delete(pods, pod.metadata.namespace, pod.metadata.name!, {});
        } catch {
          // raced with another deletion
        }
      }
    }
    const conditions =
      outcome === 'Complete'
        ? [condition('SuccessCriteriaMet', reason, message, at), condition('Complete', reason, message, at)]
        : [condition('FailureTarget', reason, message, at), condition('Failed', reason, message, at)];
    const status: Json = {
      ...job.status,
      conditions: [...(job.status?.conditions ?? []), ...conditions],
      ready: 0,
      terminating: 0,
    };
    delete status.active;
    if (outcome === 'Complete') status.completionTime = at;
    if (state.deadlineTimer) clearTimeout(state.deadlineTimer);
    const written = api.writeStatus(jobs, job, status);
    scheduleTtl(written, state);
  };

  const scheduleTtl = (job: KubeObject, state: JobState) => {
    const ttl = job.spec?.ttlSecondsAfterFinished;
    if (typeof ttl !== 'number' || state.ttlTimer) return;
    state.ttlTimer = setTimeout(
      () => {
        if (stopped) return;
        const live = store.get(jobs, job.metadata.namespace, job.metadata.name!);
        if (!live || live.metadata.uid !== job.metadata.uid || live.metadata.deletionTimestamp) return;
        try {
          // The TTL-after-finished controller deletes with foreground propagation and a uid precondition. A Job with
          // finalizers of its own is only marked (deletionTimestamp) and stays until they are removed.
          api.delete(jobs, live.metadata.namespace, live.metadata.name!, { propagationPolicy: 'Foreground', preconditions: { uid: live.metadata.uid! } });
        } catch {
          // deleted by someone else first
        }
      },
      ttl * 1000 * timeScale,
    );
  };

  const reconcile = (namespace: string | undefined, name: string, uid: string) => {
    const job = store.get(jobs, namespace, name);
    if (!job || job.metadata.uid !== uid || job.metadata.deletionTimestamp || stopped) return;
    const state = stateOf(uid);
    if (isFinished(job)) {
      scheduleTtl(job, state);
      return;
    }
    if (job.spec?.suspend) return;
    const owned = podsOf(job);
    for (const pod of owned) {
      if (pod.status?.phase === 'Succeeded') state.succeeded.add(pod.metadata.uid!);
      if (pod.status?.phase === 'Failed') state.failed.add(pod.metadata.uid!);
    }
    const active = owned.filter((p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed' && !p.metadata.deletionTimestamp);
    const terminating = owned.filter((p) => p.metadata.deletionTimestamp && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed').length;
    const ready = active.filter((p) => (p.status?.conditions ?? []).some((c: Json) => c.type === 'Ready' && c.status === 'True')).length;
    const now = Date.now();
    const startTime: string = job.status?.startTime ?? kubeTime(now);
    state.startedAt ??= now;
    const status: Json = {
      ...job.status,
      startTime,
      ready,
      terminating,
      uncountedTerminatedPods: {},
    };
    if (state.succeeded.size) status.succeeded = state.succeeded.size;
    if (state.failed.size) status.failed = state.failed.size;
    const completions: number = job.spec.completions ?? 1;
    const parallelism: number = job.spec.parallelism ?? 1;
    const deadline = job.spec.activeDeadlineSeconds;
    if (typeof deadline === 'number' && !state.deadlineTimer) {
      const due = state.startedAt + deadline * 1000 * timeScale - now;
      state.deadlineTimer = setTimeout(() => enqueue(namespace, name, uid), Math.max(0, due));
    }
    if (typeof deadline === 'number' && now - state.startedAt >= deadline * 1000 * timeScale) {
      finish({ ...job, status }, state, 'Failed', 'DeadlineExceeded', 'Job was active longer than specified deadline');
      return;
    }
    if (state.failed.size > (job.spec.backoffLimit ?? 6)) {
      finish({ ...job, status }, state, 'Failed', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit');
      return;
    }
    if (state.succeeded.size >= completions) {
      if (active.length === 0 && terminating === 0) {
        finish({ ...job, status }, state, 'Complete', 'CompletionsReached', 'Reached expected number of completions');
      }
      return;
    }
    const want = Math.min(parallelism, completions - state.succeeded.size) - active.length - terminating;
    for (let i = 0; i < want; i++) createPod(job);
    const activeNow = active.length + Math.max(0, want);
    if (activeNow > 0) status.active = activeNow;
    else delete status.active;
    if (JSON.stringify(status) !== JSON.stringify(job.status)) api.writeStatus(jobs, job, status);
  };

  const enqueue = (namespace: string | undefined, name: string, uid: string) => {
    const key = `${namespace}/${name}/${uid}`;
    if (queued.has(key)) return;
    queued.add(key);
    setImmediate(() => {
      queued.delete(key);
      reconcile(namespace, name, uid);
    });
  };

  const onChange = (change: Change) => {
    const obj = change.object;
    if (change.resource === jobs) {
      if (change.type === 'DELETED') {
        const s = states.get(obj.metadata.uid!);
        if (s?.deadlineTimer) clearTimeout(s.deadlineTimer);
        if (s?.ttlTimer) clearTimeout(s.ttlTimer);
        states.delete(obj.metadata.uid!);
        return;
      }
      // Our own status writes change nothing the controller acts on.
      if (change.type === 'MODIFIED' && change.previous && change.previous.spec === obj.spec && !obj.metadata.deletionTimestamp) {
        if (!isFinished(obj) || states.get(obj.metadata.uid!)?.ttlTimer) return;
      }
      enqueue(obj.metadata.namespace, obj.metadata.name!, obj.metadata.uid!);
      return;
    }
    if (change.resource === pods) {
      const ref = obj.metadata.ownerReferences?.find((o) => o.kind === 'Job' && o.apiVersion === 'batch/v1');
      if (!ref) return;
      // A job pod that vanishes before finishing counts as failed (the real controller tracks it with a finalizer).
      if (change.type === 'DELETED') {
        const phase = obj.status?.phase;
        if (phase !== 'Succeeded' && states.has(ref.uid)) stateOf(ref.uid).failed.add(obj.metadata.uid!);
      }
      enqueue(obj.metadata.namespace, ref.name, ref.uid);
    }
  };
  const unsubscribe = store.onChange(onChange);
  return () => {
    stopped = true;
    unsubscribe();
    for (const s of states.values()) {
      if (s.deadlineTimer) clearTimeout(s.deadlineTimer);
      if (s.ttlTimer) clearTimeout(s.ttlTimer);
    }
  };
}
