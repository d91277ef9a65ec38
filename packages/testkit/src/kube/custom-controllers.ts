import type { Api } from './api.js';
import { apiVersionOf, type ResourceInfo } from './resources.js';
import type { Change } from './store.js';
import { kubeTime, type Json, type KubeObject } from './types.js';

export interface CustomControllerOptions {
  api: Api;
  pods: ResourceInfo;
  jobs: ResourceInfo;
  stepDelayMs: number;
}

interface Child {
  resource: 'pods' | 'jobs';
  name: string;
  labels: Record<string, string>;
  template: Json;
}

/** A canned operator: which children an object wants, and the status it reports from them. */
interface Operator {
  children(obj: KubeObject): Child[];
  status(obj: KubeObject, children: KubeObject[], now: string): Json;
}

const phaseOf = (o: KubeObject) => o.status?.phase as string | undefined;
const jobDone = (o: KubeObject, type: string) => (o.status?.conditions ?? []).some((c: Json) => c.type === type && c.status === 'True');

function podCounts(pods: KubeObject[]) {
  return {
    pending: pods.filter((p) => !phaseOf(p) || phaseOf(p) === 'Pending').length,
    running: pods.filter((p) => phaseOf(p) === 'Running').length,
    succeeded: pods.filter((p) => phaseOf(p) === 'Succeeded').length,
    failed: pods.filter((p) => phaseOf(p) === 'Failed').length,
  };
}

/** Volcano `batch.volcano.sh/v1alpha1` Job: pods `{job}-{task}-{i}`; status.state.phase Pending → Running → Completed/Failed. */
const volcano: Operator = {
  children(obj) {
    const name = obj.metadata.name!;
    return ((obj.spec?.tasks ?? []) as Json[]).flatMap((task, t) =>
      Array.from({ length: task.replicas ?? 1 }, (_, i) => ({
        resource: 'pods' as const,
        name: `${name}-${task.name ?? `task${t}`}-${i}`,
        labels: {
          ...task.template?.metadata?.labels,
          'volcano.sh/job-name': name,
          'volcano.sh/job-namespace': obj.metadata.namespace!,
          'volcano.sh/queue-name': obj.spec?.queue ?? 'default',
          'volcano.sh/task-spec': task.name ?? `task${t}`,
          'volcano.sh/task-index': String(i),
        },
        template: task.template,
      })),
    );
  },
  status(obj, pods, now) {
    const counts = podCounts(pods);
    const total = volcano.children(obj).length;
    let phase = 'Pending';
    if (counts.failed > 0) phase = 'Failed';
    else if (total > 0 && counts.succeeded === total) phase = 'Completed';
    else if (counts.running > 0 && counts.running + counts.succeeded >= (obj.spec?.minAvailable ?? total)) phase = 'Running';
    const previous = obj.status?.state?.phase;
    const conditions = [...(obj.status?.conditions ?? [])];
    if (previous !== phase) conditions.push({ status: phase, lastTransitionTime: now });
    return {
      state: { phase, lastTransitionTime: previous === phase ? obj.status?.state?.lastTransitionTime : now },
      minAvailable: obj.spec?.minAvailable ?? total,
      ...counts,
      version: 1,
      conditions,
    };
  },
};

/** Kubeflow training jobs (`PyTorchJob`, `TFJob`, `MPIJob`, …): `{name}-{type}-{i}` pods; Created/Running/Succeeded/Failed conditions. */
function kubeflow(kind: string): Operator {
  const specsOf = (obj: KubeObject): Array<[string, Json]> => {
    const key = Object.keys(obj.spec ?? {}).find((k) => k.endsWith('ReplicaSpecs'));
    return key ? Object.entries(obj.spec[key] as Record<string, Json>) : [];
  };
  const leader = (type: string) => ['master', 'chief', 'launcher'].includes(type.toLowerCase());
  return {
    children(obj) {
      const name = obj.metadata.name!;
      return specsOf(obj).flatMap(([type, spec]) =>
        Array.from({ length: spec.replicas ?? 1 }, (_, i) => ({
          resource: 'pods' as const,
          name: `${name}-${type.toLowerCase()}-${i}`,
          labels: {
            ...spec.template?.metadata?.labels,
            'training.kubeflow.org/job-name': name,
            'training.kubeflow.org/operator-name': `${kind.toLowerCase()}-controller`,
            'training.kubeflow.org/replica-type': type.toLowerCase(),
            'training.kubeflow.org/replica-index': String(i),
            ...(leader(type) ? { 'training.kubeflow.org/job-role': 'master' } : {}),
          },
          template: spec.template,
        })),
      );
    },
    status(obj, pods, now) {
      const byType: Record<string, Json> = {};
      for (const [type] of specsOf(obj)) {
        const mine = pods.filter((p) => p.metadata.labels?.['training.kubeflow.org/replica-type'] === type.toLowerCase());
        const c = podCounts(mine);
        byType[type] = {
          ...(c.running + c.pending ? { active: c.running + c.pending } : {}),
          ...(c.succeeded ? { succeeded: c.succeeded } : {}),
          ...(c.failed ? { failed: c.failed } : {}),
        };
      }
      const counts = podCounts(pods);
      const total = kubeflow(kind).children(obj).length;
      const leaders = pods.filter((p) => p.metadata.labels?.['training.kubeflow.org/job-role'] === 'master');
      let state = 'Created';
      if (counts.failed > 0) state = 'Failed';
      else if (leaders.length ? leaders.every((p) => phaseOf(p) === 'Succeeded') : total > 0 && counts.succeeded === total) state = 'Succeeded';
      else if (counts.running > 0) state = 'Running';
      const conditions: Json[] = [...(obj.status?.conditions ?? [])];
      const set = (type: string, status: 'True' | 'False', message: string) => {
        const existing = conditions.find((c) => c.type === type);
        if (existing && existing.status === status) return;
        const next = { type, status, reason: `${kind}${type}`, message, lastUpdateTime: now, lastTransitionTime: now };
        if (existing) conditions.splice(conditions.indexOf(existing), 1, next);
        else conditions.push(next);
      };
      set('Created', 'True', `${kind} ${obj.metadata.name} is created.`);
      if (state === 'Running') set('Running', 'True', `${kind} ${obj.metadata.namespace}/${obj.metadata.name} is running.`);
      if (state === 'Succeeded' || state === 'Failed') {
        if (conditions.some((c) => c.type === 'Running')) set('Running', 'False', `${kind} ${obj.metadata.name} is ${state.toLowerCase()}.`);
        set(state, 'True', `${kind} ${obj.metadata.namespace}/${obj.metadata.name} ${state === 'Succeeded' ? 'successfully completed' : 'has failed'}.`);
      }
      return {
        conditions,
        replicaStatuses: byType,
        startTime: obj.status?.startTime ?? now,
        ...(state === 'Succeeded' ? { completionTime: obj.status?.completionTime ?? now } : {}),
      };
    },
  };
}

/** JobSet `jobset.x-k8s.io/v1alpha2`: child batch/v1 Jobs `{jobset}-{replicatedJob}-{i}`; replicatedJobsStatus and Completed/Failed. */
const jobset: Operator = {
  children(obj) {
    const name = obj.metadata.name!;
    return ((obj.spec?.replicatedJobs ?? []) as Json[]).flatMap((rj) =>
      Array.from({ length: rj.replicas ?? 1 }, (_, i) => {
        const labels = {
          'jobset.sigs.k8s.io/jobset-name': name,
          'jobset.sigs.k8s.io/replicatedjob-name': rj.name,
          'jobset.sigs.k8s.io/job-index': String(i),
          'jobset.sigs.k8s.io/replicatedjob-replicas': String(rj.replicas ?? 1),
        };
        const template = structuredClone(rj.template ?? {});
        template.spec ??= {};
        template.spec.template ??= {};
        template.spec.template.metadata = {
          ...template.spec.template.metadata,
          labels: { ...template.spec.template.metadata?.labels, ...labels },
        };
        return { resource: 'jobs' as const, name: `${name}-${rj.name}-${i}`, labels: { ...rj.template?.metadata?.labels, ...labels }, template };
      }),
    );
  },
  status(obj, jobs, now) {
    const replicatedJobsStatus = ((obj.spec?.replicatedJobs ?? []) as Json[]).map((rj) => {
      const mine = jobs.filter((j) => j.metadata.labels?.['jobset.sigs.k8s.io/replicatedjob-name'] === rj.name);
      return {
        name: rj.name,
        ready: mine.filter((j) => !jobDone(j, 'Complete') && !jobDone(j, 'Failed') && (j.status?.ready ?? 0) > 0).length,
        succeeded: mine.filter((j) => jobDone(j, 'Complete')).length,
        failed: mine.filter((j) => jobDone(j, 'Failed')).length,
        active: mine.filter((j) => !jobDone(j, 'Complete') && !jobDone(j, 'Failed') && (j.status?.active ?? 0) > 0).length,
        suspended: 0,
      };
    });
    const total = jobset.children(obj).length;
    const failed = replicatedJobsStatus.some((s) => s.failed > 0);
    const completed = !failed && total > 0 && replicatedJobsStatus.reduce((n, s) => n + s.succeeded, 0) === total;
    const conditions: Json[] = [...(obj.status?.conditions ?? [])];
    const terminal = conditions.find((c) => c.type === 'Completed' || c.type === 'Failed');
    if (!terminal && failed) {
      conditions.push({
        type: 'Failed',
        status: 'True',
        reason: 'FailedJobs',
        message: 'jobset failed due to one or more job failures',
        lastTransitionTime: now,
      });
    } else if (!terminal && completed) {
      conditions.push({ type: 'Completed', status: 'True', reason: 'AllJobsCompleted', message: 'jobset completed successfully', lastTransitionTime: now });
    }
    return {
      replicatedJobsStatus,
      conditions,
      ...(failed || completed ? { terminalState: failed ? 'Failed' : 'Completed' } : {}),
    };
  },
};

function operatorFor(r: ResourceInfo): Operator | undefined {
  if (r.group === 'batch.volcano.sh' && r.kind === 'Job') return volcano;
  if (r.group === 'kubeflow.org') return kubeflow(r.kind);
  if (r.group === 'jobset.x-k8s.io' && r.kind === 'JobSet') return jobset;
  return undefined;
}

/**
 * Canned operators for the custom kinds Launch submits (Volcano Job, Kubeflow training jobs, JobSet) and a minimal
 * Deployment controller (status reports all replicas ready one step after a change). Any other custom kind is only
 * stored: tests drive its status with `patchStatus`.
 */
export function startCustomControllers({ api, pods, jobs, stepDelayMs }: CustomControllerOptions): () => void {
  const { store } = api;
  const queued = new Set<string>();
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;

  const reconcile = (r: ResourceInfo, op: Operator, namespace: string | undefined, name: string, uid: string) => {
    const obj = store.get(r, namespace, name);
    if (!obj || obj.metadata.uid !== uid || obj.metadata.deletionTimestamp || stopped) return;
    const wanted = op.children(obj);
    const existing = store.dependents(uid).map((d) => d.object);
    for (const child of wanted) {
      if (existing.some((e) => e.metadata.name === child.name)) continue;
      const ownerReferences = [{ apiVersion: apiVersionOf(r), kind: r.kind, name, uid, controller: true, blockOwnerDeletion: true }];
      try {
        if (child.resource === 'pods') {
          api.create(pods, namespace, {
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: {
              name: child.name,
              labels: child.labels,
              ...(child.template?.metadata?.annotations ? { annotations: child.template.metadata.annotations } : {}),
              ownerReferences,
            },
            spec: { restartPolicy: 'Never', ...structuredClone(child.template?.spec ?? {}) },
          });
        } else {
          api.create(jobs, namespace, {
            apiVersion: 'batch/v1',
            kind: 'Job',
            metadata: { name: child.name, labels: child.labels, ownerReferences },
            spec: child.template.spec,
          });
        }
      } catch (error) {
        // An invalid template: report it the way operators do, on the object's status.
        api.writeStatus(r, obj, { ...obj.status, state: { phase: 'Failed', message: String((error as Error).message) } });
        return;
      }
    }
    const children = store.dependents(uid).map((d) => d.object);
    const status = op.status(store.get(r, namespace, name) ?? obj, children, kubeTime());
    const live = store.get(r, namespace, name)!;
    if (JSON.stringify(status) !== JSON.stringify(live.status)) api.writeStatus(r, live, status);
  };

  const enqueue = (r: ResourceInfo, namespace: string | undefined, name: string, uid: string) => {
    const op = operatorFor(r);
    if (!op) return;
    const key = `${r.group}/${r.plural}/${namespace}/${name}/${uid}`;
    if (queued.has(key)) return;
    queued.add(key);
    setImmediate(() => {
      queued.delete(key);
      reconcile(r, op, namespace, name, uid);
    });
  };

  const deploymentReady = (obj: KubeObject) => {
    const t = setTimeout(() => {
      timers.delete(t);
      const live = store.get(registryDeployments(obj), obj.metadata.namespace, obj.metadata.name!);
      if (!live || stopped || live.metadata.uid !== obj.metadata.uid) return;
      const replicas = live.spec?.replicas ?? 1;
      const now = kubeTime();
      api.writeStatus(registryDeployments(obj), live, {
        observedGeneration: live.metadata.generation,
        replicas,
        updatedReplicas: replicas,
        readyReplicas: replicas,
        availableReplicas: replicas,
        conditions: [
          {
            type: 'Available',
            status: 'True',
            reason: 'MinimumReplicasAvailable',
            message: 'Deployment has minimum availability.',
            lastUpdateTime: now,
            lastTransitionTime: now,
          },
          {
            type: 'Progressing',
            status: 'True',
            reason: 'NewReplicaSetAvailable',
            message: `ReplicaSet "${live.metadata.name}-${live.metadata.uid!.slice(0, 10)}" has successfully progressed.`,
            lastUpdateTime: now,
            lastTransitionTime: now,
          },
        ],
      });
    }, stepDelayMs);
    timers.add(t);
  };
  const registryDeployments = (_obj: KubeObject) => api.registry.find('apps', 'v1', 'deployments')!;

  const onChange = (change: Change) => {
    const { object: obj, resource: r } = change;
    if (r.group === 'apps' && r.plural === 'deployments') {
      if (change.type !== 'DELETED' && change.previous?.spec !== obj.spec) deploymentReady(obj);
      return;
    }
    if (r.custom && change.type !== 'DELETED' && (change.type === 'ADDED' || change.previous?.spec !== obj.spec)) {
      enqueue(r, obj.metadata.namespace, obj.metadata.name!, obj.metadata.uid!);
      return;
    }
    if (r === pods || r === jobs) {
      for (const ref of obj.metadata.ownerReferences ?? []) {
        const owner = api.registry.byKind(ref.apiVersion, ref.kind);
        if (owner?.custom) enqueue(owner, obj.metadata.namespace, ref.name, ref.uid);
      }
    }
  };
  const unsubscribe = store.onChange(onChange);
  return () => {
    stopped = true;
    unsubscribe();
    for (const t of timers) clearTimeout(t);
  };
}
