import { isTerminal, type Diagnosis, type LogChunk, type Logger, type RunState, type RunStatus, type SubmittedRun } from '@launch/core';
import { isConflict, isNotFound, kubeError, statusCode } from './api-errors.js';
import { CODE_ANNOTATION, parseCodeAnnotation, removeCodeWhenIdle, type CodePvc } from './code-mount.js';
import type { Cluster } from './cluster.js';
import { diagnosisLine, diagnosePod, failedInitContainer, podExitCode } from './diagnose.js';
import type { WatchEventType } from './informer.js';
import { LABEL, labelValue } from './labels.js';
import { FINALIZER, JOB_KIND, type KindRef } from './manifest.js';
import { createLogStream, type LogStream } from './log-stream.js';
import type { Monitor } from './monitor.js';
import { deleteSecret } from './secrets.js';
import { deleteServiceObject, type ObjectRef } from './services.js';
import { customState, jobTerminalState, podState } from './state.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface RunTrackerInit {
  cluster: Cluster;
  namespace: string;
  kind: KindRef;
  agentName: string;
  itemLabel: string;
  runId: string;
  itemId: string;
  queue?: string;
  spec?: unknown;
  /** Secrets deleted when the run ends (never the per-release secret). */
  secrets: string[];
  services: ObjectRef[];
  logTailLines: number;
  /** Stream the running pod's log to `onLog` listeners. */
  streamLogs?: boolean;
  monitor: Monitor;
  logger: Logger;
  /**
   * The runner's code PVC: the run's code directory on it (from `submitted`, else the object's `launch.dev/code`
   * annotation) is removed once the run has ended and none of its pods is still going.
   */
  code?: CodePvc;
}

const MAX_MESSAGES = 50;

/** Order of live states: a run never goes back (a deletion mark arriving as a modification is not a restart). */
const RANK: Record<string, number> = { unknown: 0, starting: 1, running: 2, stopping: 3 };

/** Whether the API server marked the object for deletion. */
const deleting = (obj: Obj) => Boolean(obj?.metadata?.deletionTimestamp);
/** Whether the garbage collector still deletes the object's dependents (pods) before it goes. */
const dependentsRemain = (obj: Obj) => Array.isArray(obj?.metadata?.finalizers) && obj.metadata.finalizers.includes('foregroundDeletion');

/**
 * Follows one run from the shared watches: W&B's state mapping, diagnosis, log-tail capture before the pod can be
 * garbage-collected, cleanup of the run's secrets and services when it ends, and cancellation.
 */
export interface RunTracker {
  /** Starts routing watch events to this run; resolves once the watches have listed. */
  readonly synced: Promise<void>;
  /**
   * Sets the backend object's name (known once created) and returns the SubmittedRun. `codeSubPath`: the run's code
   * directory on the code PVC, when this call made it (else it is read from the object's annotation).
   */
  submitted(name: string, codeSubPath?: string): SubmittedRun;
  /** Forgets the run without cleanup (creation failed). */
  detach(): void;
}

export function createRunTracker(init: RunTrackerInit): RunTracker {
  const { cluster, namespace, kind, logger } = init;
  const plain = kind === JOB_KIND || (kind.group === 'batch' && kind.plural === 'jobs');
  let name = '';
  let state: RunState = 'starting';
  const messages: string[] = [];
  let diagnosis: Diagnosis | undefined;
  /** Diagnoses already delivered in a non-terminal status (the agent warns those itself). */
  const delivered = new Set<string>();
  let exitCode: number | null | undefined;
  let logTail: string | undefined;
  const captures = new Map<string, Promise<void>>();
  let lastPod: Obj | undefined;
  /** The run object as the watch last delivered it. */
  let lastObject: Obj | undefined;
  let cancelRequested = false;
  let finalizing = false;
  let terminal: RunStatus | undefined;
  const listeners = new Set<(s: RunStatus) => void>();
  const logListeners = new Set<(chunk: LogChunk) => void>();
  let logStream: LogStream | undefined;
  const waiters: ((s: RunStatus) => void)[] = [];
  let codeSubPath: string | undefined;

  const status = (): RunStatus =>
    terminal ?? {
      state,
      messages: [...messages],
      ...(exitCode !== undefined ? { exitCode } : {}),
      ...(diagnosis ? { diagnosis } : {}),
    };

  const emit = () => {
    const s = status();
    if (!isTerminal(s.state) && s.diagnosis) delivered.add(diagnosisLine(s.diagnosis));
    for (const l of [...listeners]) {
      try {
        l(s);
      } catch (error) {
        logger.error({ err: error instanceof Error ? error.message : String(error) }, 'run status listener failed');
      }
    }
  };

  const addMessage = (m: string) => {
    if (messages.includes(m)) return;
    messages.push(m);
    if (messages.length > MAX_MESSAGES) messages.shift();
  };

  const setState = (next: RunState) => {
    if (terminal || finalizing || next === state) return;
    if ((RANK[next] ?? 0) < (RANK[state] ?? 0)) return;
    state = next;
    emit();
  };

  /** Follows the running pod's log for `onLog` listeners (one stream per run, only while someone listens). */
  const streamLog = (pod: Obj) => {
    if (!init.streamLogs || logStream || logListeners.size === 0 || terminal || finalizing) return;
    const podName = pod?.metadata?.name;
    if (typeof podName !== 'string') return;
    logStream = createLogStream({
      cluster,
      namespace,
      pod: podName,
      container: pod?.spec?.containers?.[0]?.name,
      logger,
      onChunk: (text) => {
        for (const l of [...logListeners]) {
          try {
            l({ stream: 'stdout', text });
          } catch (error) {
            logger.error({ err: error instanceof Error ? error.message : String(error) }, 'run log listener failed');
          }
        }
      },
    });
  };

  const setDiagnosis = (d: Diagnosis) => {
    if (diagnosis && diagnosis.category === d.category && diagnosis.message === d.message) return;
    diagnosis = d;
    if (!terminal && !finalizing) emit();
  };

  const captureLog = (pod: Obj) => {
    const podName = pod?.metadata?.name;
    if (typeof podName !== 'string' || captures.has(podName) || cancelRequested) return;
    // A failed init container's log says why the app containers never ran.
    const container = failedInitContainer(pod)?.name ?? pod?.spec?.containers?.[0]?.name;
    const p = cluster.core
      .readNamespacedPodLog({ name: podName, namespace, container, tailLines: init.logTailLines })
      .then((text) => {
        if (typeof text === 'string' && text.length > 0) logTail = text;
      })
      .catch((error: unknown) => {
        logger.warn(
          { pod: podName, err: kubeError(error, { verb: 'get', resource: 'core/pods/log', namespace, name: podName }).message },
          "could not read the failed pod's log",
        );
      });
    captures.set(podName, p);
  };

  const deleteObject = async () => {
    try {
      await cluster.custom.deleteNamespacedCustomObject({
        group: kind.group,
        version: kind.version,
        namespace,
        plural: kind.plural,
        name,
        propagationPolicy: 'Foreground',
      });
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw kubeError(error, { verb: 'delete', resource: `${kind.group || 'core'}/${kind.plural}`, namespace, name });
    }
  };

  /**
   * Removes the agent's finalizer, so the object can go (its TTL, or a cancel's deletion). A JSON patch that
   * tests the finalizer's position first, so a concurrent change of the list (the garbage collector removing
   * `foregroundDeletion`) is never overwritten; on a conflict it reads the object again.
   */
  const releaseOutcome = async () => {
    if (!name) return;
    const ref = { group: kind.group, version: kind.version, namespace, plural: kind.plural, name };
    for (let attempt = 0; attempt < 5; attempt++) {
      // First from the watch's latest copy (no request); after a failed test, from the API server.
      let obj: Obj | undefined = attempt === 0 ? lastObject : undefined;
      if (!obj) {
        try {
          obj = (await cluster.custom.getNamespacedCustomObject(ref)) as Obj;
        } catch (error) {
          if (isNotFound(error)) return;
          throw kubeError(error, { verb: 'get', resource: `${kind.group || 'core'}/${kind.plural}`, namespace, name });
        }
      }
      const finalizers: unknown[] = Array.isArray(obj?.metadata?.finalizers) ? obj.metadata.finalizers : [];
      const at = finalizers.indexOf(FINALIZER);
      if (at < 0) return;
      try {
        await cluster.custom.patchNamespacedCustomObject({
          ...ref,
          body: [
            { op: 'test', path: `/metadata/finalizers/${at}`, value: FINALIZER },
            { op: 'remove', path: `/metadata/finalizers/${at}` },
          ],
        });
        return;
      } catch (error) {
        if (isNotFound(error)) return;
        // A failed test (422) or a conflict: the list changed under us; read it again.
        if (isConflict(error) || statusCode(error) === 422) continue;
        throw kubeError(error, { verb: 'patch', resource: `${kind.group || 'core'}/${kind.plural}`, namespace, name });
      }
    }
    throw kubeError(new Error('the finalizer list kept changing'), { verb: 'patch', resource: `${kind.group || 'core'}/${kind.plural}`, namespace, name });
  };

  const cleanup = async () => {
    const tasks: Promise<unknown>[] = [
      ...init.secrets.map((s) => deleteSecret(cluster, namespace, s)),
      ...init.services.map((r) => deleteServiceObject(cluster, r)),
    ];
    for (const r of await Promise.allSettled(tasks)) {
      if (r.status === 'rejected') logger.warn({ err: r.reason instanceof Error ? r.reason.message : String(r.reason) }, 'cleanup after the run failed');
    }
  };

  /** Pods of this run that may still read its code (not yet Succeeded or Failed). */
  const livePods = async (): Promise<number> => {
    const list = (await cluster.core.listNamespacedPod({
      namespace,
      labelSelector: `${LABEL.itemId}=${init.itemLabel},${LABEL.agent}=${labelValue(init.agentName)}`,
    })) as Obj;
    const items: Obj[] = Array.isArray(list?.items) ? list.items : [];
    return items.filter((p) => p?.status?.phase !== 'Succeeded' && p?.status?.phase !== 'Failed').length;
  };

  const releaseCode = async () => {
    if (!init.code || !codeSubPath) return;
    await removeCodeWhenIdle({ root: init.code.mountPath, subPath: codeSubPath, livePods, logger });
  };

  const finalize = (final: RunState, message?: string) => {
    if (terminal || finalizing) return;
    finalizing = true;
    if (cancelRequested && final === 'failed') final = 'stopped';
    if (message) addMessage(message);
    void (async () => {
      if (final === 'failed' && lastPod && !captures.has(lastPod.metadata?.name)) captureLog(lastPod);
      await Promise.all(captures.values());
      if (final === 'failed' && !diagnosis && typeof exitCode === 'number' && exitCode !== 0) {
        const container = lastPod?.spec?.containers?.[0]?.name;
        diagnosis = {
          category: 'NonZeroExit',
          message: `container ${container ?? ''} of pod ${lastPod?.metadata?.name ?? name} exited with code ${exitCode}`.replace('  ', ' '),
          hint: logTail
            ? 'the job itself failed: read the end of its log (attached) and fix the code or its inputs'
            : 'the job itself failed: read its log (kubectl logs) and fix the code or its inputs',
        };
      }
      if (final === 'preempted' && name) {
        // Stop Kubernetes from retrying the pod: the agent requeues the run instead.
        await deleteObject().catch((e: unknown) => logger.warn({ err: e instanceof Error ? e.message : String(e) }, 'could not delete the preempted job'));
      }
      if (diagnosis && !delivered.has(diagnosisLine(diagnosis)) && (final !== 'finished' || diagnosis.category !== 'Unschedulable')) {
        // The agent warns about diagnoses only while a run is live: deliver this one as a message.
        addMessage(diagnosisLine(diagnosis));
      }
      const s: RunStatus = { state: final, messages: [...messages] };
      if (exitCode !== undefined) s.exitCode = exitCode;
      if (diagnosis && final !== 'finished') s.diagnosis = diagnosis;
      if (logTail !== undefined && final === 'failed') s.logTail = logTail;
      await cleanup();
      await releaseCode();
      // Let the log stream deliver what the container wrote last, then close it.
      await logStream?.close();
      untrack();
      terminal = s;
      emit();
      for (const w of waiters.splice(0)) w(s);
    })();
  };

  const onObject = (type: WatchEventType, obj: Obj) => {
    if (name && obj?.metadata?.name !== name) return;
    lastObject = type === 'DELETED' ? undefined : obj;
    if (init.code && codeSubPath === undefined) codeSubPath = parseCodeAnnotation(obj?.metadata?.annotations?.[CODE_ANNOTATION], init.code.name);
    if (terminal || finalizing) return;
    if (type === 'DELETED') {
      if (cancelRequested) return finalize('stopped');
      const t = plain ? jobTerminalState(obj) : undefined;
      return finalize(t?.state ?? 'failed', t ? undefined : `the ${kind.kind} ${name || obj?.metadata?.name} was deleted before it finished`);
    }
    // An ended run's object may also be marked for deletion (its TTL ran out while no agent watched; the
    // agent's finalizer holds it): its end still counts.
    const ended = plain ? jobTerminalState(obj) : undefined;
    if (ended) return finalize(ended.state, ended.message);
    const s = plain ? undefined : customState(obj);
    if (s === 'finished' || s === 'failed') return finalize(s);
    if (deleting(obj)) {
      // Marked for deletion (our cancel, or someone else's delete): it has stopped once its pods are gone.
      if (!dependentsRemain(obj)) {
        return finalize(
          cancelRequested ? 'stopped' : 'failed',
          cancelRequested ? undefined : `the ${kind.kind} ${name || obj?.metadata?.name} was deleted before it finished`,
        );
      }
      return;
    }
    if (plain) {
      if ((obj?.status?.ready ?? 0) >= 1) setState('running');
      return;
    }
    if (s) setState(s);
  };

  const onPod = (type: WatchEventType, pod: Obj) => {
    if (terminal || finalizing) return;
    lastPod = pod;
    const d = diagnosePod(pod);
    if (d) setDiagnosis(d);
    const code = podExitCode(pod);
    if (code !== undefined) exitCode = code;
    const phase = pod?.status?.phase;
    if (phase === 'Failed' || (code !== undefined && code !== 0)) captureLog(pod);
    const ps = podState(pod);
    if (ps === 'preempted') return finalize('preempted');
    if (type === 'DELETED') return;
    if (ps === 'running') {
      setState('running');
      streamLog(pod);
    } else if (phase === 'Succeeded' && !plain) setState('running');
  };

  const tracked = init.monitor.track(
    { cluster, namespace, kind, agentName: init.agentName, itemLabel: init.itemLabel },
    {
      onObject,
      onPod,
      onWatchError(error, what) {
        const e = kubeError(error, { verb: 'watch', resource: what, namespace });
        if (e.category === 'PermissionDenied') addMessage(e.describe());
      },
    },
  );
  const untrack = tracked.untrack;

  let run: SubmittedRun | undefined;
  return {
    synced: tracked.synced,
    detach() {
      untrack();
    },
    submitted(objectName, subPath) {
      name = objectName;
      if (subPath !== undefined) codeSubPath = subPath;
      if (run) return run;
      run = {
        id: objectName,
        runId: init.runId,
        itemId: init.itemId,
        ...(init.queue !== undefined ? { queue: init.queue } : {}),
        ...(init.spec !== undefined ? { spec: init.spec } : {}),
        status: async () => status(),
        onStatus(listener) {
          listeners.add(listener);
          return () => listeners.delete(listener);
        },
        onLog(listener) {
          logListeners.add(listener);
          if (state === 'running' && lastPod) streamLog(lastPod);
          return () => {
            logListeners.delete(listener);
            if (logListeners.size === 0) void logStream?.close();
          };
        },
        async logs() {
          const pod = lastPod;
          if (!pod?.metadata?.name) return logTail ?? '';
          try {
            const text = await cluster.core.readNamespacedPodLog({
              name: pod.metadata.name,
              namespace,
              container: pod?.spec?.containers?.[0]?.name,
            });
            return typeof text === 'string' ? text : '';
          } catch (error) {
            if (isNotFound(error)) return logTail ?? '';
            throw kubeError(error, { verb: 'get', resource: 'core/pods/log', namespace, name: pod.metadata.name });
          }
        },
        wait: () => (terminal ? Promise.resolve(terminal) : new Promise<RunStatus>((resolve) => waiters.push(resolve))),
        async cancel() {
          if (terminal || finalizing || cancelRequested) return;
          cancelRequested = true;
          setState('stopping');
          const existed = await deleteObject().catch((error: unknown) => {
            cancelRequested = false;
            throw error;
          });
          if (!existed) finalize('stopped');
        },
        async reported() {
          await releaseOutcome();
        },
      };
      return run;
    },
  };
}
