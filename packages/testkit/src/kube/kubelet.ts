import type { Api } from './api.js';
import { updateManagedFields } from './managed-fields.js';
import type { ResourceInfo } from './resources.js';
import type { Change } from './store.js';
import { kubeTime, type Json, type KubeObject } from './types.js';

/** One step of a scripted pod life. Each step is applied `stepDelayMs` after the previous one. */
export type KubeletStep =
  | { pending: 'ContainerCreating' | 'PodInitializing' }
  | { unschedulable: string }
  | { imagePull: 'ErrImagePull' | 'ImagePullBackOff'; message?: string }
  | { running: true }
  | { crashLoop: { restartCount: number; exitCode?: number } }
  | { log: string; container?: string }
  | { succeed: true }
  | { fail: { exitCode: number; reason?: string; message?: string } }
  | { evict: string }
  | { preempt: 'PreemptionByScheduler' | 'EvictionByEvictionAPI' | 'TerminationByKubelet' }
  | { wait: number }
  /**
   * Runs the pod's work for real (the kaniko build stand-in, for one): the executor's log lines become the first
   * container's log, and its exit code succeeds (0) or fails the pod. `signal` fires when the pod is deleted.
   */
  | { execute: PodExecutor }
  /**
   * Runs the pod's init containers for real, one after the other, as the kubelet does before any app container: each
   * is running while its executor works (its log lines become that init container's log), then terminated with the
   * executor's exit code. A failure ends the pod (phase Failed, restartPolicy Never), the app containers still waiting
   * in PodInitializing. A pod without init containers passes the step at once.
   */
  | { init: InitContainerExecutor };

/** Work a scripted pod does for real; see the `execute` step. */
export type PodExecutor = (pod: Json, io: { log(text: string): void; signal: AbortSignal }) => Promise<{ exitCode: number; reason?: string; message?: string }>;

/** Work one init container does for real; see the `init` step. `container` is its spec in the pod. */
export type InitContainerExecutor = (
  pod: Json,
  container: Json,
  io: { log(text: string): void; signal: AbortSignal },
) => Promise<{ exitCode: number; reason?: string; message?: string }>;

export interface KubeletDefaults {
  /** Delay before each step is applied, in ms (default 20). */
  stepDelayMs: number;
}

/** Which pods a script applies to: all given criteria must hold. Labels and names are checked on the pod and its owner. */
export interface KubeletMatch {
  label?: Record<string, string>;
  /** An image name, exactly, or a pattern any container image must match. */
  image?: string | RegExp;
  name?: RegExp;
}

export interface ScriptedKubelet {
  /** Script for pods of jobs/custom objects matching: first matching rule wins. */
  script(match: KubeletMatch, steps: KubeletStep[]): void;
  /**
   * Default script when nothing matches. Without one, pods go ContainerCreating → running → succeed, and the first
   * container's command+args drive the life: `echo X` logs X, `sleep N` runs N (scaled) seconds, `exit N` fails with N.
   */
  setDefault(steps: KubeletStep[]): void;
  /** Freeze every pod where it is (steps, waits and terminations resume on `resume()`). */
  pause(): void;
  resume(): void;
  /** Remove all scripts and the explicit default. */
  reset(): void;
}

export interface LogLine {
  at: number;
  text: string;
}

interface ContainerRun {
  name: string;
  image: string;
  state: Json;
  lastState: Json;
  restartCount: number;
  ready: boolean;
  started: boolean;
  containerID?: string;
  logs: LogLine[];
  previousLogs: LogLine[];
}

interface PodRun {
  pod: KubeObject;
  phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
  scheduled: boolean;
  unschedulable?: string;
  initialized: boolean;
  startTime?: string;
  reason?: string;
  message?: string;
  disruption?: { reason: string; message: string; at: string };
  containers: ContainerRun[];
  initContainers: ContainerRun[];
  podIP?: string;
  stopped: boolean;
  terminating: boolean;
  logWaiters: Set<() => void>;
  /** Aborted when the pod is deleted, for an `execute` step under way. */
  work: AbortController;
}

export interface KubeletInternals extends ScriptedKubelet {
  /** The pod's run (logs and container state), while the pod exists. */
  run(uid: string): PodRunView | undefined;
  /** Eviction API: mark the pod with DisruptionTarget and delete it gracefully. */
  evict(pod: KubeObject): void;
  stop(): void;
}

export interface PodRunView {
  containers: ReadonlyArray<{ name: string; state: Json; restartCount: number; logs: LogLine[]; previousLogs: LogLine[] }>;
  initContainers: ReadonlyArray<{ name: string; state: Json; restartCount: number; logs: LogLine[]; previousLogs: LogLine[] }>;
  /** Resolves when the pod's logs grow or its containers change state. */
  onChange(listener: () => void): () => void;
}

const NODE = 'kind-worker';
const HOST_IP = '172.18.0.2';

let podIpCounter = 1;
function nextPodIp(): string {
  podIpCounter += 1;
  return `10.244.${(podIpCounter >> 8) & 255}.${podIpCounter & 255}`;
}

function randomHex(n: number): string {
  let s = '';
  while (s.length < n) s += Math.random().toString(16).slice(2);
  return s.slice(0, n);
}

function expandEnv(text: string, container: Json): string {
  const env = new Map<string, string>();
  for (const e of (container?.env ?? []) as { name?: string; value?: string }[]) {
    if (typeof e?.name === 'string') env.set(e.name, typeof e.value === 'string' ? e.value : '');
  }
  return text.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a: string | undefined, b: string | undefined) => env.get((a ?? b)!) ?? '');
}

/** Derives a pod's life from its first container's command: `echo`, `sleep N`, `exit N`. */
export function stepsFromCommand(container: Json, timeScale: number): KubeletStep[] {
  const text = [...(container?.command ?? []), ...(container?.args ?? [])].map(String).join(' ');
  const steps: KubeletStep[] = [{ pending: 'ContainerCreating' }, { running: true }];
  const re = /\becho\s+(?:"([^"]*)"|'([^']*)'|([^;&|\n]*))|\bsleep\s+(\d+(?:\.\d+)?)|\bexit\s+(\d+)/g;
  for (const m of text.matchAll(re)) {
    if (m[0].startsWith('echo')) {
      // A shell expands $NAME and ${NAME} from the container's env, except inside single quotes.
      const raw = (m[1] ?? m[2] ?? m[3] ?? '').trim();
      steps.push({ log: m[2] !== undefined ? raw : expandEnv(raw, container) });
    } else if (m[4] !== undefined) steps.push({ wait: Number(m[4]) * 1000 * timeScale });
    else if (m[5] !== undefined) {
      const code = Number(m[5]);
      steps.push(code === 0 ? { succeed: true } : { fail: { exitCode: code } });
      return steps;
    }
  }
  steps.push({ succeed: true });
  return steps;
}

export interface KubeletOptions {
  api: Api;
  pods: ResourceInfo;
  stepDelayMs: number;
  timeScale: number;
}

/**
 * The scripted kubelet: schedules every new pod onto one node and walks it through the steps of its script,
 * writing the pod status shapes the real kubelet writes.
 */
export function createKubelet({ api, pods, stepDelayMs, timeScale }: KubeletOptions): KubeletInternals {
  const { store } = api;
  const rules: Array<{ match: KubeletMatch; steps: KubeletStep[] }> = [];
  let defaultSteps: KubeletStep[] | undefined;
  let paused = false;
  let resumeWaiters: Array<() => void> = [];
  let stopped = false;
  const runs = new Map<string, PodRun>();
  const timers = new Set<NodeJS.Timeout>();

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(
        () => {
          timers.delete(t);
          resolve();
        },
        Math.max(0, ms),
      );
      timers.add(t);
    });
  const gate = async () => {
    while (paused && !stopped) await new Promise<void>((resolve) => resumeWaiters.push(resolve));
  };

  const ownerOf = (pod: KubeObject): KubeObject | undefined => {
    const ref = pod.metadata.ownerReferences?.find((o) => o.controller) ?? pod.metadata.ownerReferences?.[0];
    if (!ref) return undefined;
    const r = api.registry.byKind(ref.apiVersion, ref.kind);
    return r ? store.get(r, pod.metadata.namespace, ref.name) : undefined;
  };

  const matches = (match: KubeletMatch, pod: KubeObject) => {
    const owner = ownerOf(pod);
    const grand = owner ? ownerOf(owner) : undefined;
    const chain = [pod, owner, grand].filter((o): o is KubeObject => o !== undefined);
    if (match.label) {
      const ok = Object.entries(match.label).every(([k, v]) => chain.some((o) => o.metadata.labels?.[k] === v));
      if (!ok) return false;
    }
    if (match.image) {
      const images = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].map((c: Json) => c.image);
      const want = match.image;
      if (!(typeof want === 'string' ? images.includes(want) : images.some((image: unknown) => typeof image === 'string' && want.test(image)))) return false;
    }
    if (match.name) {
      const re = match.name;
      if (!chain.some((o) => re.test(o.metadata.name ?? ''))) return false;
    }
    return true;
  };

  const scriptFor = (pod: KubeObject): KubeletStep[] => {
    for (const rule of rules) if (matches(rule.match, pod)) return rule.steps;
    if (defaultSteps) return defaultSteps;
    return stepsFromCommand(pod.spec?.containers?.[0], timeScale);
  };

  const notify = (run: PodRun) => {
    for (const w of [...run.logWaiters]) w();
  };

  const conditionsOf = (run: PodRun, at: string): Json[] => {
    const conditions: Json[] = [];
    const c = (type: string, statusValue: string, reason?: string, message?: string) =>
      conditions.push({
        type,
        status: statusValue,
        lastProbeTime: null,
        lastTransitionTime: at,
        ...(reason ? { reason } : {}),
        ...(message ? { message } : {}),
      });
    if (run.disruption) c('DisruptionTarget', 'True', run.disruption.reason, run.disruption.message);
    if (!run.scheduled) {
      if (run.unschedulable !== undefined) c('PodScheduled', 'False', 'Unschedulable', run.unschedulable);
      return conditions;
    }
    const names = run.containers.filter((x) => !x.ready).map((x) => x.name);
    const terminal = run.phase === 'Succeeded' || run.phase === 'Failed';
    const ready = !terminal && names.length === 0;
    const notReady = terminal
      ? { reason: run.phase === 'Succeeded' ? 'PodCompleted' : 'PodFailed' }
      : { reason: 'ContainersNotReady', message: `containers with unready status: [${names.join(' ')}]` };
    c('PodReadyToStartContainers', run.startTime && run.containers.some((x) => x.containerID || x.state.running) ? 'True' : 'False');
    if (run.initialized) c('Initialized', 'True');
    else {
      c('Initialized', 'False', 'ContainersNotInitialized', `containers with incomplete status: [${run.initContainers.map((x) => x.name).join(' ')}]`);
    }
    if (ready) c('Ready', 'True');
    else c('Ready', 'False', notReady.reason, notReady.message);
    if (ready) c('ContainersReady', 'True');
    else c('ContainersReady', 'False', notReady.reason, notReady.message);
    c('PodScheduled', 'True');
    return conditions;
  };

  const containerStatus = (x: ContainerRun) => ({
    name: x.name,
    state: x.state,
    lastState: x.lastState,
    ready: x.ready,
    restartCount: x.restartCount,
    image: x.image,
    imageID: x.containerID ? `docker.io/library/${x.image}@sha256:${'0'.repeat(64)}` : '',
    ...(x.containerID ? { containerID: x.containerID } : {}),
    started: x.started,
  });

  /** Writes the pod status (and nodeName on scheduling) the way the kubelet's status manager does. */
  const commit = (run: PodRun) => {
    const live = store.get(pods, run.pod.metadata.namespace, run.pod.metadata.name!);
    if (!live || live.metadata.uid !== run.pod.metadata.uid) {
      run.stopped = true;
      return;
    }
    const at = kubeTime();
    const statusValue: Json = {
      phase: run.phase,
      conditions: conditionsOf(run, at),
      ...(run.reason ? { reason: run.reason } : {}),
      ...(run.message ? { message: run.message } : {}),
      qosClass: live.status?.qosClass ?? 'BestEffort',
    };
    if (run.scheduled) {
      statusValue.hostIP = HOST_IP;
      statusValue.hostIPs = [{ ip: HOST_IP }];
      if (run.podIP) {
        statusValue.podIP = run.podIP;
        statusValue.podIPs = [{ ip: run.podIP }];
      }
      if (run.startTime) statusValue.startTime = run.startTime;
      if (run.initContainers.length) statusValue.initContainerStatuses = run.initContainers.map(containerStatus);
      statusValue.containerStatuses = run.containers.map(containerStatus);
    }
    const spec = run.scheduled && !live.spec?.nodeName ? { ...live.spec, nodeName: NODE } : live.spec;
    const next: KubeObject = { ...live, spec, status: statusValue };
    const fields = updateManagedFields(live, next, { manager: 'kubelet', apiVersion: 'v1', subresource: 'status', model: 'V1Pod' });
    if (fields.length) next.metadata = { ...next.metadata, managedFields: fields };
    run.pod = store.put(pods, next, 'MODIFIED');
    notify(run);
  };

  const terminated = (x: ContainerRun, exitCode: number, reason: string, message?: string) => {
    const now = kubeTime();
    x.state = {
      terminated: {
        exitCode,
        reason,
        ...(message ? { message } : {}),
        startedAt: x.state.running?.startedAt ?? now,
        finishedAt: now,
        ...(x.containerID ? { containerID: x.containerID } : {}),
      },
    };
    x.ready = false;
    x.started = false;
  };

  const appendLog = (run: PodRun, text: string, container?: string, into?: ContainerRun) => {
    const target = into ?? (container ? run.containers.find((x) => x.name === container) : run.containers[0]) ?? run.containers[0];
    if (!target) return;
    const lines = text.replace(/\n$/, '').split('\n');
    const at = Date.now();
    for (const line of lines) target.logs.push({ at, text: line });
    notify(run);
  };

  const apply = (run: PodRun, step: KubeletStep): 'continue' | 'done' => {
    const now = kubeTime();
    if ('wait' in step) return 'continue';
    if ('log' in step) {
      appendLog(run, step.log, step.container);
      return 'continue';
    }
    if ('unschedulable' in step) {
      run.scheduled = false;
      run.unschedulable = step.unschedulable;
      commit(run);
      return 'continue';
    }
    // Every other step means the pod has been placed on the node.
    if (!run.scheduled) {
      run.scheduled = true;
      run.unschedulable = undefined;
    }
    run.startTime ??= now;
    if ('pending' in step) {
      run.phase = 'Pending';
      if (step.pending === 'PodInitializing' && run.initContainers.length) {
        run.initialized = false;
        for (const x of run.initContainers) {
          x.containerID ??= `containerd://${randomHex(64)}`;
          x.state = { running: { startedAt: now } };
          x.started = true;
        }
      }
      for (const x of run.containers) x.state = { waiting: { reason: step.pending } };
      commit(run);
      return 'continue';
    }
    // From here on, init containers have completed.
    if (!run.initialized) {
      run.initialized = true;
      for (const x of run.initContainers) {
        x.containerID ??= `containerd://${randomHex(64)}`;
        terminated(x, 0, 'Completed');
      }
    }
    if ('imagePull' in step) {
      run.phase = 'Pending';
      for (const x of run.containers) {
        const message =
          step.message ??
          (step.imagePull === 'ErrImagePull'
            ? `failed to pull and unpack image "docker.io/library/${x.image}": failed to resolve reference "docker.io/library/${x.image}": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed`
            : `Back-off pulling image "${x.image}"`);
        x.state = { waiting: { reason: step.imagePull, message } };
      }
      commit(run);
      return 'continue';
    }
    if ('running' in step) {
      run.phase = 'Running';
      run.podIP ??= nextPodIp();
      for (const x of run.containers) {
        x.containerID ??= `containerd://${randomHex(64)}`;
        x.state = { running: { startedAt: now } };
        x.ready = true;
        x.started = true;
      }
      commit(run);
      return 'continue';
    }
    if ('crashLoop' in step) {
      run.phase = 'Running';
      run.podIP ??= nextPodIp();
      const exitCode = step.crashLoop.exitCode ?? 1;
      for (const x of run.containers) {
        x.containerID ??= `containerd://${randomHex(64)}`;
        x.restartCount = step.crashLoop.restartCount;
        x.lastState = {
          terminated: {
            exitCode,
            reason: 'Error',
            startedAt: now,
            finishedAt: now,
            containerID: x.containerID,
          },
        };
        // Until the restarted container runs, both the current and the previous log are the dead instance's.
        x.previousLogs = [...x.logs];
        x.state = {
          waiting: {
            reason: 'CrashLoopBackOff',
            message: `back-off ${Math.min(300, 10 * 2 ** Math.max(0, step.crashLoop.restartCount - 1))}s restarting failed container=${x.name} pod=${run.pod.metadata.name}_${run.pod.metadata.namespace}(${run.pod.metadata.uid})`,
          },
        };
        x.ready = false;
        x.started = false;
      }
      commit(run);
      return 'continue';
    }
    if ('succeed' in step) {
      run.phase = 'Succeeded';
      for (const x of run.containers) {
        x.containerID ??= `containerd://${randomHex(64)}`;
        terminated(x, 0, 'Completed');
      }
      commit(run);
      return 'done';
    }
    if ('fail' in step) {
      run.phase = 'Failed';
      const reason = step.fail.reason ?? 'Error';
      for (const x of run.containers) {
        x.containerID ??= `containerd://${randomHex(64)}`;
        terminated(x, step.fail.exitCode, reason, step.fail.message);
      }
      commit(run);
      return 'done';
    }
    if ('evict' in step) {
      run.phase = 'Failed';
      run.reason = 'Evicted';
      run.message = step.evict;
      run.disruption = { reason: 'TerminationByKubelet', message: step.evict, at: now };
      for (const x of run.containers) {
        terminated(x, 137, 'ContainerStatusUnknown', 'The container could not be located when the pod was terminated');
      }
      commit(run);
      return 'done';
    }
    if ('preempt' in step) {
      const messages = {
        PreemptionByScheduler: 'default-scheduler: preempting to accommodate a higher priority pod',
        EvictionByEvictionAPI: 'Eviction API: evicting',
        TerminationByKubelet: 'Pod was terminated in response to imminent node shutdown.',
      } as const;
      run.disruption = { reason: step.preempt, message: messages[step.preempt], at: now };
      commit(run);
      if (step.preempt === 'TerminationByKubelet') {
        run.phase = 'Failed';
        run.reason = 'Terminated';
        run.message = messages.TerminationByKubelet;
        for (const x of run.containers) terminated(x, 137, 'Error');
        commit(run);
      } else {
        // The scheduler and the eviction API delete the pod; the kubelet then kills it (see terminate()).
        try {
          api.delete(pods, run.pod.metadata.namespace, run.pod.metadata.name!, {});
        } catch {
          // already gone
        }
      }
      return 'done';
    }
    return 'continue';
  };

  const live = (run: PodRun) => !stopped && !run.stopped && !run.terminating;

  const runPod = async (run: PodRun) => {
    const steps = scriptFor(run.pod);
    // A pod starts bound to the node unless its script begins unschedulable (the scheduler's first pass).
    for (const step of steps) {
      await gate();
      if (!live(run)) return;
      await sleep('wait' in step ? step.wait : stepDelayMs);
      await gate();
      if (!live(run)) return;
      if ('init' in step) {
        if ((await initialize(run, step.init)) === 'done') return;
        continue;
      }
      if ('execute' in step) {
        let outcome: { exitCode: number; reason?: string; message?: string };
        try {
          outcome = await step.execute(run.pod, { log: (text) => appendLog(run, text), signal: run.work.signal });
        } catch (error) {
          appendLog(run, `executor failed: ${error instanceof Error ? error.message : String(error)}`);
          outcome = { exitCode: 1 };
        }
        await gate();
        if (!live(run)) return;
        const end: KubeletStep =
          outcome.exitCode === 0 ? { succeed: true } : { fail: { exitCode: outcome.exitCode, reason: outcome.reason, message: outcome.message } };
        if (apply(run, end) === 'done') return;
        continue;
      }
      if (apply(run, step) === 'done') return;
    }
  };

  /** The `init` step: each init container in order, for real; a failure fails the pod. */
  const initialize = async (run: PodRun, execute: InitContainerExecutor): Promise<'continue' | 'done'> => {
    if (run.initialized) return 'continue';
    run.scheduled = true;
    run.unschedulable = undefined;
    run.startTime ??= kubeTime();
    run.phase = 'Pending';
    for (const x of [...run.containers, ...run.initContainers]) x.state = { waiting: { reason: 'PodInitializing' } };
    const specs: Json[] = run.pod.spec?.initContainers ?? [];
    for (const [i, x] of run.initContainers.entries()) {
      x.containerID ??= `containerd://${randomHex(64)}`;
      x.state = { running: { startedAt: kubeTime() } };
      x.started = true;
      commit(run);
      let outcome: { exitCode: number; reason?: string; message?: string };
      try {
        outcome = await execute(run.pod, specs[i], { log: (text) => appendLog(run, text, undefined, x), signal: run.work.signal });
      } catch (error) {
        appendLog(run, `executor failed: ${error instanceof Error ? error.message : String(error)}`, undefined, x);
        outcome = { exitCode: 1 };
      }
      await gate();
      if (!live(run)) return 'done';
      if (outcome.exitCode !== 0) {
        terminated(x, outcome.exitCode, outcome.reason ?? 'Error', outcome.message);
        run.phase = 'Failed';
        commit(run);
        return 'done';
      }
      terminated(x, 0, 'Completed');
      commit(run);
    }
    run.initialized = true;
    commit(run);
    return 'continue';
  };

  /** Graceful deletion: the kubelet kills running containers, then removes the pod (grace period 0). */
  const terminate = async (run: PodRun) => {
    if (run.terminating) return;
    run.terminating = true;
    run.work.abort();
    await gate();
    await sleep(stepDelayMs);
    await gate();
    if (stopped) return;
    if (run.phase !== 'Succeeded' && run.phase !== 'Failed') {
      run.phase = 'Failed';
      for (const x of run.containers) {
        if (x.state.running) terminated(x, 137, 'Error');
        else if (!x.state.terminated)
          terminated(x, 137, 'ContainerStatusUnknown', 'The container could not be located when the pod was deleted.  The container used to be Running');
      }
      commit(run);
    }
    const current = store.get(pods, run.pod.metadata.namespace, run.pod.metadata.name!);
    if (current && current.metadata.uid === run.pod.metadata.uid) api.finalizeDelete(pods, current);
  };

  const newRun = (pod: KubeObject): PodRun => {
    const container = (c: Json): ContainerRun => ({
      name: c.name,
      image: c.image,
      state: { waiting: { reason: 'ContainerCreating' } },
      lastState: {},
      restartCount: 0,
      ready: false,
      started: false,
      logs: [],
      previousLogs: [],
    });
    return {
      pod,
      phase: 'Pending',
      scheduled: false,
      initialized: !(pod.spec?.initContainers?.length > 0),
      containers: (pod.spec?.containers ?? []).map(container),
      initContainers: (pod.spec?.initContainers ?? []).map(container),
      stopped: false,
      terminating: false,
      logWaiters: new Set(),
      work: new AbortController(),
    };
  };

  const onChange = (change: Change) => {
    if (change.resource !== pods) return;
    const pod = change.object;
    const uid = pod.metadata.uid!;
    if (change.type === 'ADDED') {
      const run = newRun(pod);
      runs.set(uid, run);
      void runPod(run);
      return;
    }
    const run = runs.get(uid);
    if (!run) return;
    if (change.type === 'DELETED') {
      run.stopped = true;
      run.work.abort();
      runs.delete(uid);
      notify(run);
      return;
    }
    run.pod = pod;
    if (pod.metadata.deletionTimestamp && !run.terminating) void terminate(run);
  };
  const unsubscribe = store.onChange(onChange);

  return {
    script(match, steps) {
      rules.push({ match, steps });
    },
    setDefault(steps) {
      defaultSteps = steps;
    },
    pause() {
      paused = true;
    },
    resume() {
      paused = false;
      const waiters = resumeWaiters;
      resumeWaiters = [];
      for (const w of waiters) w();
    },
    reset() {
      rules.length = 0;
      defaultSteps = undefined;
    },
    run(uid) {
      const run = runs.get(uid);
      if (!run) return undefined;
      return {
        containers: run.containers,
        initContainers: run.initContainers,
        onChange(listener) {
          run.logWaiters.add(listener);
          return () => run.logWaiters.delete(listener);
        },
      };
    },
    evict(pod) {
      const run = runs.get(pod.metadata.uid!);
      if (run) {
        run.disruption = { reason: 'EvictionByEvictionAPI', message: 'Eviction API: evicting', at: kubeTime() };
        commit(run);
      }
      api.delete(pods, pod.metadata.namespace, pod.metadata.name!, {});
    },
    stop() {
      stopped = true;
      unsubscribe();
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const w of resumeWaiters) w();
      resumeWaiters = [];
      for (const run of runs.values()) {
        run.work.abort();
        notify(run);
      }
    },
  };
}
