import type { Logger } from '@launch/core';
import { isNotFound, kubeError, statusCode } from './api-errors.js';
import type { Cluster } from './cluster.js';
import { ANNOTATION, LABEL, monitorSelector } from './labels.js';
import { FINALIZER, isPlainJob, type KindRef } from './manifest.js';
import type { ObjectRef } from './services.js';
import { customState, jobTerminalState } from './state.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** What adoption learns about one object from its labels and annotations. */
export interface Orphan {
  kind: KindRef;
  namespace: string;
  name: string;
  runId: string;
  itemId: string;
  itemLabel: string;
  queue?: string;
  spec?: unknown;
  secrets: string[];
  services: ObjectRef[];
}

function parseSpec(text: string | undefined): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function parseServices(text: string | undefined): ObjectRef[] {
  if (!text) return [];
  try {
    const list = JSON.parse(text) as unknown;
    return Array.isArray(list) ? (list.filter((r) => r && typeof r === 'object' && typeof (r as ObjectRef).name === 'string') as ObjectRef[]) : [];
  } catch {
    return [];
  }
}

/**
 * Lists one kind's objects labelled for the agent: cluster-wide, else (403) in each of the given namespaces. A missing
 * CRD is none. A 403 on a custom kind in a namespace is a warning (a chart may grant Volcano in no namespace, or not
 * in every one); on plain Jobs it is an error, since the agent could not follow its own runs.
 */
async function listKind(cluster: Cluster, kind: KindRef, selector: string, namespaces: string[], logger: Logger): Promise<Obj[]> {
  const base = { group: kind.group, version: kind.version, plural: kind.plural, labelSelector: selector };
  try {
    const list = (await cluster.custom.listClusterCustomObject(base)) as Obj;
    return Array.isArray(list.items) ? list.items : [];
  } catch (error) {
    if (isNotFound(error)) return [];
    if (statusCode(error) !== 403) throw kubeError(error, { verb: 'list', resource: `${kind.group}/${kind.plural}` });
    logger.info({ kind: kind.plural, namespaces }, 'no cluster-wide list permission: adopting namespace by namespace');
  }
  const out: Obj[] = [];
  for (const namespace of namespaces) {
    try {
      const list = (await cluster.custom.listNamespacedCustomObject({ ...base, namespace })) as Obj;
      if (Array.isArray(list.items)) out.push(...list.items);
    } catch (error) {
      if (isNotFound(error)) continue;
      if (statusCode(error) === 403 && !isPlainJob(kind.apiVersion)) {
        logger.warn({ kind: `${kind.group}/${kind.plural}`, namespace }, 'no permission to list this kind here: its runs, if any, are not adopted');
        continue;
      }
      throw kubeError(error, { verb: 'list', resource: `${kind.group}/${kind.plural}`, namespace });
    }
  }
  return out;
}

/**
 * Finds the runs an agent (by name) started before a restart: its labelled Jobs and custom objects that have not
 * finished, plus finished ones whose per-run secret still exists (the previous agent never saw them end, because it
 * deletes that secret when it does).
 */
export async function findOrphans(cluster: Cluster, agentName: string, kinds: KindRef[], namespaces: string[], logger: Logger): Promise<Orphan[]> {
  const selector = monitorSelector(agentName);
  const out: Orphan[] = [];
  for (const kind of kinds) {
    for (const obj of await listKind(cluster, kind, selector, namespaces, logger)) {
      const meta = obj?.metadata ?? {};
      const annotations: Record<string, string> = meta.annotations ?? {};
      const itemId = annotations[ANNOTATION.itemId];
      const itemLabel = meta.labels?.[LABEL.itemId];
      if (!itemId || !itemLabel || typeof meta.name !== 'string') continue;
      // Our finalizer means no agent has recorded this run's end yet, whether it still runs, ended, or its TTL
      // ran out meanwhile: adopt it. Without it the run was reported (or was made before finalizers were used).
      const held = Array.isArray(meta.finalizers) && meta.finalizers.includes(FINALIZER);
      if (meta.deletionTimestamp && !held) continue;
      // A Volcano Job (batch.volcano.sh) also lists as plural `jobs`; never confuse it with batch/v1.
      if (typeof obj.apiVersion === 'string' && obj.apiVersion !== kind.apiVersion && !(isPlainJob(obj.apiVersion) && isPlainJob(kind.apiVersion))) continue;
      const secrets = (annotations[ANNOTATION.secrets] ?? '').split(',').filter(Boolean);
      const ended = isPlainJob(kind.apiVersion) ? jobTerminalState(obj) !== undefined : ['finished', 'failed'].includes(customState(obj));
      if (ended && !held) {
        // Made before finalizers: its per-run secret witnesses that no agent saw it end (the agent deletes it then).
        const witness = secrets[0];
        if (!witness) continue;
        const exists = await cluster.core.readNamespacedSecret({ name: witness, namespace: meta.namespace }).then(
          () => true,
          (e: unknown) => {
            if (isNotFound(e)) return false;
            throw kubeError(e, { verb: 'get', resource: 'core/secrets', namespace: meta.namespace, name: witness });
          },
        );
        if (!exists) continue;
      }
      out.push({
        kind,
        namespace: meta.namespace,
        name: meta.name,
        runId: annotations[ANNOTATION.runId] ?? meta.labels?.[LABEL.runId] ?? '',
        itemId,
        itemLabel,
        queue: annotations[ANNOTATION.queue],
        spec: parseSpec(annotations[ANNOTATION.spec]),
        secrets,
        services: parseServices(annotations[ANNOTATION.services]),
      });
    }
  }
  return out;
}
