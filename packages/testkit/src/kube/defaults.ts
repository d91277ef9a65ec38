import type { ResourceInfo } from './resources.js';
import type { Json, KubeObject } from './types.js';

function imagePullPolicy(image: string | undefined): string {
  if (!image) return 'IfNotPresent';
  const last = image.split('/').pop() ?? '';
  if (image.includes('@')) return 'IfNotPresent';
  return !last.includes(':') || last.endsWith(':latest') ? 'Always' : 'IfNotPresent';
}

function defaultContainer(c: Json): Json {
  return {
    ...c,
    imagePullPolicy: c.imagePullPolicy ?? imagePullPolicy(c.image),
    terminationMessagePath: c.terminationMessagePath ?? '/dev/termination-log',
    terminationMessagePolicy: c.terminationMessagePolicy ?? 'File',
    resources: c.resources ?? {},
  };
}

/** The apiserver's defaulting of a pod spec (the fields clients commonly read back). */
export function defaultPodSpec(spec: Json, restartPolicy = 'Always'): Json {
  if (!spec || typeof spec !== 'object') return spec;
  return {
    ...spec,
    containers: Array.isArray(spec.containers) ? spec.containers.map(defaultContainer) : spec.containers,
    ...(Array.isArray(spec.initContainers) ? { initContainers: spec.initContainers.map(defaultContainer) } : {}),
    restartPolicy: spec.restartPolicy ?? restartPolicy,
    terminationGracePeriodSeconds: spec.terminationGracePeriodSeconds ?? 30,
    dnsPolicy: spec.dnsPolicy ?? 'ClusterFirst',
    securityContext: spec.securityContext ?? {},
    schedulerName: spec.schedulerName ?? 'default-scheduler',
  };
}

function qosClass(spec: Json): string {
  const containers: Json[] = Array.isArray(spec?.containers) ? spec.containers : [];
  const any = containers.some((c) => Object.keys(c.resources?.requests ?? {}).length || Object.keys(c.resources?.limits ?? {}).length);
  if (!any) return 'BestEffort';
  const guaranteed = containers.every((c) => {
    const limits = c.resources?.limits ?? {};
    const requests = c.resources?.requests ?? limits;
    return (
      limits.cpu !== undefined &&
      limits.memory !== undefined &&
      String(requests.cpu) === String(limits.cpu) &&
      String(requests.memory) === String(limits.memory)
    );
  });
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

let ipCounter = 10;
function nextClusterIp(): string {
  ipCounter += 1;
  return `10.96.${(ipCounter >> 8) & 255}.${ipCounter & 255}`;
}

/** Conversion folds a Secret's write-only `stringData` into base64 `data` (stringData wins on a shared key). */
export function foldStringData(obj: KubeObject): KubeObject {
  if (obj.stringData === undefined) return obj;
  const data: Record<string, string> = { ...(obj.data as Record<string, string> | undefined) };
  for (const [k, v] of Object.entries((obj.stringData as Record<string, string> | null) ?? {})) {
    data[k] = Buffer.from(String(v)).toString('base64');
  }
  const { stringData: _drop, ...rest } = obj;
  return { ...rest, ...(Object.keys(data).length ? { data } : {}) } as KubeObject;
}

/** Applies the defaults the real apiserver fills in on create. `uid` is the new object's uid. */
export function applyCreateDefaults(r: ResourceInfo, obj: KubeObject): KubeObject {
  if (r.custom) return obj;
  const uid = obj.metadata.uid!;
  const name = obj.metadata.name!;
  switch (`${r.group}/${r.plural}`) {
    case '/namespaces':
      return {
        ...obj,
        metadata: { ...obj.metadata, labels: { ...obj.metadata.labels, 'kubernetes.io/metadata.name': name } },
        spec: { finalizers: ['kubernetes'], ...obj.spec },
        status: { phase: 'Active' },
      };
    case '/pods': {
      const spec = defaultPodSpec(obj.spec);
      spec.serviceAccountName ??= spec.serviceAccount ?? 'default';
      spec.serviceAccount ??= spec.serviceAccountName;
      spec.enableServiceLinks ??= true;
      spec.priority ??= 0;
      spec.preemptionPolicy ??= 'PreemptLowerPriority';
      spec.tolerations ??= [
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
        { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
      ];
      return { ...obj, spec, status: { phase: 'Pending', qosClass: qosClass(spec) } };
    }
    case '/secrets':
      return { ...foldStringData(obj), type: obj.type ?? 'Opaque' };
    case '/services': {
      const spec = { ...obj.spec };
      spec.type ??= 'ClusterIP';
      if (spec.clusterIP === undefined) spec.clusterIP = nextClusterIp();
      spec.clusterIPs ??= [spec.clusterIP];
      spec.sessionAffinity ??= 'None';
      spec.ipFamilies ??= ['IPv4'];
      spec.ipFamilyPolicy ??= 'SingleStack';
      spec.internalTrafficPolicy ??= 'Cluster';
      if (Array.isArray(spec.ports)) {
        spec.ports = spec.ports.map((p: Json) => ({ protocol: 'TCP', targetPort: p.port, ...p }));
      }
      return { ...obj, spec, status: { loadBalancer: {} } };
    }
    case 'batch/jobs': {
      const spec = { ...obj.spec };
      if (spec.parallelism === undefined) spec.parallelism = 1;
      if (spec.completions === undefined && obj.spec?.parallelism === undefined) spec.completions = 1;
      spec.backoffLimit ??= 6;
      spec.completionMode ??= 'NonIndexed';
      spec.suspend ??= false;
      spec.podReplacementPolicy ??= 'TerminatingOrFailed';
      const template = spec.template ?? {};
      // Strategy (generateSelector): the template gets the job-name and controller-uid labels, unless the user set
      // them, and the selector matches the uid; with manualSelector the user owns both.
      const templateLabels: Record<string, string> = { ...template.metadata?.labels };
      if (spec.manualSelector !== true) {
        for (const key of ['job-name', 'batch.kubernetes.io/job-name']) templateLabels[key] ??= name;
        for (const key of ['controller-uid', 'batch.kubernetes.io/controller-uid']) templateLabels[key] ??= uid;
        const selector = { ...spec.selector };
        selector.matchLabels = { ...selector.matchLabels };
        selector.matchLabels['batch.kubernetes.io/controller-uid'] ??= uid;
        spec.selector = selector;
      }
      spec.template = {
        ...template,
        metadata: { ...template.metadata, labels: templateLabels },
        spec: defaultPodSpec(template.spec, 'Never'),
      };
      // SetDefaults_Job copies the template labels to a Job that has none. It copies the map itself, so the labels
      // generateSelector then adds land on the Job too (and a stored Job is re-defaulted when read back).
      const ownLabels = obj.metadata.labels && Object.keys(obj.metadata.labels).length > 0 ? obj.metadata.labels : undefined;
      const labels = ownLabels ?? (template.metadata?.labels !== undefined || spec.manualSelector !== true ? templateLabels : undefined);
      return { ...obj, metadata: { ...obj.metadata, ...(labels ? { labels } : {}) }, spec, status: {} };
    }
    case 'apps/deployments': {
      const spec = { ...obj.spec };
      spec.replicas ??= 1;
      spec.revisionHistoryLimit ??= 10;
      spec.progressDeadlineSeconds ??= 600;
      spec.strategy ??= { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } };
      spec.template = { ...spec.template, spec: defaultPodSpec(spec.template?.spec) };
      return { ...obj, spec, status: {} };
    }
    default:
      return obj;
  }
}

/** Resources whose spec changes bump metadata.generation. */
export function hasGeneration(r: ResourceInfo): boolean {
  return r.custom || r.plural === 'jobs' || r.plural === 'deployments';
}
