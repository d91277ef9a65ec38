import { LaunchError } from '@launch/core';
import { isNotFound, kubeError } from './api-errors.js';
import type { Cluster } from './cluster.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Where a created auxiliary object lives, kept in an annotation so an adopting agent can clean it up. */
export interface ObjectRef {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
}

const CORE_KINDS: Record<string, string> = {
  Service: 'services',
  Pod: 'pods',
  ConfigMap: 'configmaps',
  PersistentVolumeClaim: 'persistentvolumeclaims',
};

function plural(kind: string): string {
  const lower = kind.toLowerCase();
  if (lower.endsWith('s')) return `${lower}es`;
  if (lower.endsWith('y')) return `${lower.slice(0, -1)}ies`;
  return `${lower}s`;
}

function split(apiVersion: string): { group: string; version: string } {
  const i = apiVersion.indexOf('/');
  return i < 0 ? { group: '', version: apiVersion } : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}

/** Creates one `additional_services` object (core kinds through the core API, any grouped kind through custom objects). */
export async function createServiceObject(cluster: Cluster, manifest: Obj): Promise<ObjectRef> {
  const apiVersion = String(manifest.apiVersion ?? '');
  const kind = String(manifest.kind ?? '');
  const namespace = String(manifest.metadata.namespace);
  const name = String(manifest.metadata.name);
  const { group, version } = split(apiVersion);
  const resource = `${group || 'core'}/${group ? plural(kind) : (CORE_KINDS[kind] ?? plural(kind))}`;
  try {
    if (!group) {
      const core = cluster.core;
      const body = manifest as never;
      // Strict: the API server refuses an unknown field instead of dropping it with a warning.
      if (kind === 'Service') await core.createNamespacedService({ namespace, body, fieldValidation: 'Strict' });
      else if (kind === 'Pod') await core.createNamespacedPod({ namespace, body, fieldValidation: 'Strict' });
      else if (kind === 'ConfigMap') await core.createNamespacedConfigMap({ namespace, body, fieldValidation: 'Strict' });
      else if (kind === 'PersistentVolumeClaim') await core.createNamespacedPersistentVolumeClaim({ namespace, body, fieldValidation: 'Strict' });
      else {
        throw new LaunchError({
          code: 'run.unsupported_service',
          stage: 'run',
          category: 'InvalidSpec',
          message: `additional_services: core kind "${kind}" is not supported (supported: ${Object.keys(CORE_KINDS).join(', ')}, or any kind with an API group)`,
          hint: 'use a Service, Pod, ConfigMap, PersistentVolumeClaim or a grouped kind such as apps/v1 Deployment',
        });
      }
    } else {
      await cluster.custom.createNamespacedCustomObject({ group, version, namespace, plural: plural(kind), body: manifest, fieldValidation: 'Strict' });
    }
  } catch (error) {
    throw kubeError(error, { verb: 'create', resource, namespace, name });
  }
  return { apiVersion, kind, namespace, name };
}

/** Deletes an auxiliary object; one already gone is not an error. */
export async function deleteServiceObject(cluster: Cluster, ref: ObjectRef): Promise<void> {
  const { group, version } = split(ref.apiVersion);
  const { namespace, name } = ref;
  try {
    if (!group) {
      const core = cluster.core;
      if (ref.kind === 'Service') await core.deleteNamespacedService({ name, namespace });
      else if (ref.kind === 'Pod') await core.deleteNamespacedPod({ name, namespace });
      else if (ref.kind === 'ConfigMap') await core.deleteNamespacedConfigMap({ name, namespace });
      else if (ref.kind === 'PersistentVolumeClaim') await core.deleteNamespacedPersistentVolumeClaim({ name, namespace });
    } else {
      await cluster.custom.deleteNamespacedCustomObject({ group, version, namespace, plural: plural(ref.kind), name, propagationPolicy: 'Foreground' });
    }
  } catch (error) {
    if (!isNotFound(error)) throw kubeError(error, { verb: 'delete', resource: `${group || 'core'}/${plural(ref.kind)}`, namespace, name });
  }
}
