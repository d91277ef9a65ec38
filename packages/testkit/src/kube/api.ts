import { randomUUID } from 'node:crypto';
import { applyCreateDefaults, foldStringData, hasGeneration } from './defaults.js';
import { updateManagedFields } from './managed-fields.js';
import { jsonPatch, mergePatch } from './patch.js';
import type { ResourceInfo, ResourceRegistry } from './resources.js';
import { apiVersionOf } from './resources.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import { alreadyExists, ApiError, badRequest, conflict, gone, invalid, notFound, status, unsupportedMediaType, type StatusCause } from './status.js';
import type { Store } from './store.js';
import { clone, kubeTime, type Json, type KubeObject } from './types.js';
import { pruneUnknownFields } from './schema.js';
import { updateCauses, validateObject } from './validate.js';

const SUFFIX_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** The apiserver's generateName suffix: 5 characters from an alphabet without vowels (no accidental words). */
export function randomSuffix(): string {
  let s = '';
  for (let i = 0; i < 5; i++) s += SUFFIX_ALPHABET[Math.floor(Math.random() * SUFFIX_ALPHABET.length)];
  return s;
}

export interface ListQuery {
  labelSelector?: string;
  fieldSelector?: string;
  limit?: string;
  continue?: string;
  resourceVersion?: string;
  resourceVersionMatch?: string;
}

export interface ListResult {
  items: KubeObject[];
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}

export interface DeleteOptions {
  propagationPolicy?: string;
  gracePeriodSeconds?: number;
  orphanDependents?: boolean;
  preconditions?: { uid?: string; resourceVersion?: string };
  dryRun?: boolean;
}

export interface WriteOptions {
  dryRun?: boolean;
  subresource?: 'status';
  /** Who writes, for managedFields (the HTTP layer passes `fieldManager` or the User-Agent's product); default `kube-controller-manager`. */
  fieldManager?: string;
  /** Server-side field validation of unknown fields; default `Warn`, as kube-apiserver 1.31 when the parameter is absent. */
  fieldValidation?: 'Strict' | 'Warn' | 'Ignore';
  /** Receives the warnings the HTTP layer sends as `Warning: 299 - "…"` headers. */
  warnings?: string[];
}

/** The manager the simulated controllers write as. */
export const CONTROLLER_MANAGER = 'kube-controller-manager';

/** The apiserver's storage-facing verbs, shared by the HTTP layer and the simulated controllers. */
export interface Api {
  readonly store: Store;
  readonly registry: ResourceRegistry;
  create(r: ResourceInfo, namespace: string | undefined, body: Json, options?: WriteOptions): KubeObject;
  get(r: ResourceInfo, namespace: string | undefined, name: string): KubeObject;
  list(r: ResourceInfo, namespace: string | undefined, query?: ListQuery): ListResult;
  replace(r: ResourceInfo, namespace: string | undefined, name: string, body: Json, options?: WriteOptions): KubeObject;
  patch(r: ResourceInfo, namespace: string | undefined, name: string, contentType: string, body: Json, options?: WriteOptions): KubeObject;
  /** Returns the HTTP status and body the real server answers a DELETE with. */
  delete(r: ResourceInfo, namespace: string | undefined, name: string, options?: DeleteOptions): { code: number; body: Json };
  /**
   * Controller-side write: replaces status (and optionally metadata) without validation or conflicts, recorded in
   * managedFields as a status update by `manager` (default `kube-controller-manager`).
   */
  writeStatus(r: ResourceInfo, obj: KubeObject, statusValue: Json, metadata?: Partial<KubeObject['metadata']>, manager?: string): KubeObject;
  /** Removes an object from storage now (the end of graceful/foreground deletion). */
  finalizeDelete(r: ResourceInfo, obj: KubeObject): void;
}

export interface ApiOptions {
  store: Store;
  registry: ResourceRegistry;
  validate: boolean;
  namespacesResource: ResourceInfo;
}

function ensureNamespaceMatches(r: ResourceInfo, namespace: string | undefined, body: Json): void {
  if (!r.namespaced) return;
  const given = body?.metadata?.namespace;
  if (given !== undefined && given !== '' && given !== namespace) {
    throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
  }
}

function ensureKind(r: ResourceInfo, body: Json): void {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw badRequest(`${r.kind} in version "${r.version}" cannot be handled as a ${r.kind}: the body must be a JSON object`);
  }
  if (body.kind !== undefined && body.kind !== r.kind) {
    throw badRequest(`${r.kind} in version "${r.version}" cannot be handled as a ${r.kind}: the kind "${body.kind}" does not match the resource`);
  }
  if (body.apiVersion !== undefined && body.apiVersion !== apiVersionOf(r)) {
    throw badRequest(`the API version in the data (${body.apiVersion}) does not match the expected API version (${apiVersionOf(r)})`);
  }
}

function decodeContinue(token: string): { rv: number; after: string } {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { rv: number; after: string };
    if (typeof parsed.rv === 'number' && typeof parsed.after === 'string') return parsed;
  } catch {
    // fall through
  }
  throw badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
}

function objectKey(obj: KubeObject): string {
  return `${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
}

export function createApi({ store, registry, validate, namespacesResource }: ApiOptions): Api {
  const requireNamespace = (r: ResourceInfo, namespace: string | undefined) => {
    if (!r.namespaced) return;
    if (!namespace || !store.get(namespacesResource, undefined, namespace)) {
      throw notFound(namespacesResource, namespace ?? '');
    }
  };

  const current = (r: ResourceInfo, namespace: string | undefined, name: string) => {
    const obj = store.get(r, namespace, name);
    if (!obj) throw notFound(r, name);
    return obj;
  };

  const checkUpdate = (r: ResourceInfo, existing: KubeObject, next: KubeObject) => {
    if (r.plural === 'jobs' && !r.custom) {
      const before = JSON.stringify(existing.spec?.selector);
      if (JSON.stringify(next.spec?.selector) !== before) {
        throw invalid(r, existing.metadata.name!, [{ reason: 'FieldValueInvalid', message: 'Invalid value: field is immutable', field: 'spec.selector' }]);
      }
      if (JSON.stringify(next.spec?.template) !== JSON.stringify(existing.spec?.template)) {
        throw invalid(r, existing.metadata.name!, [{ reason: 'FieldValueInvalid', message: 'Invalid value: field is immutable', field: 'spec.template' }]);
      }
    }
  };

  /**
   * What decoding into the Go struct does to a built-in kind: fields the type does not declare are dropped (pruned),
   * and reported as the strict decoder words them, depending on fieldValidation.
   */
  const decode = (r: ResourceInfo, body: Json, options: WriteOptions, verb: 'write' | 'patch'): Json => {
    if (r.custom || !r.model) return body;
    const copy = clone(body);
    const unknown = pruneUnknownFields(copy, r.model).map((f) => `unknown field ${JSON.stringify(f)}`);
    if (unknown.length === 0) return copy;
    const mode = options.fieldValidation ?? 'Warn';
    const strictError = `strict decoding error: ${unknown.join(', ')}`;
    if (mode === 'Strict' && verb === 'write') {
      throw badRequest(`${r.kind} in version "${r.version}" cannot be handled as a ${r.kind}: ${strictError}`);
    }
    if (mode === 'Strict') {
      // The patch handler reports the patched object against the field "patch", with an empty group/kind.
      const message = `Invalid value: ${JSON.stringify(JSON.stringify(body))}: ${strictError}`;
      throw new ApiError(status(422, 'Invalid', ` "" is invalid: patch: ${message}`, { causes: [{ reason: 'FieldValueInvalid', message, field: 'patch' }] }));
    }
    if (mode === 'Warn') options.warnings?.push(...unknown);
    return copy;
  };

  const managedFields = (r: ResourceInfo, previous: KubeObject | undefined, next: KubeObject, options: WriteOptions) =>
    updateManagedFields(previous, next, {
      manager: options.fieldManager ?? CONTROLLER_MANAGER,
      apiVersion: apiVersionOf(r),
      ...(options.subresource ? { subresource: options.subresource } : {}),
      model: r.custom ? undefined : r.model,
    });

  const finalizeDelete = (r: ResourceInfo, obj: KubeObject) => {
    const live = store.get(r, obj.metadata.namespace, obj.metadata.name!);
    if (live && live.metadata.uid === obj.metadata.uid) store.remove(r, live);
  };

  /** Writes `next` over `existing`, keeping server-owned fields; for the main resource, status changes are dropped. */
  const update = (r: ResourceInfo, existing: KubeObject, body: Json, options: WriteOptions, verb: 'write' | 'patch' = 'write'): KubeObject => {
    ensureKind(r, body);
    const next = decode(r, body, options, verb);
    const name = existing.metadata.name!;
    if (next.metadata?.name !== undefined && next.metadata.name !== name) {
      throw badRequest(`the name of the object (${next.metadata.name}) does not match the name on the URL (${name})`);
    }
    const rv = next.metadata?.resourceVersion;
    if (rv !== undefined && rv !== '' && rv !== existing.metadata.resourceVersion) throw conflict(r, name);
    let merged: KubeObject;
    if (options.subresource === 'status') {
      merged = { ...existing, status: next.status };
    } else {
      merged = {
        ...next,
        metadata: {
          ...next.metadata,
          name,
          namespace: existing.metadata.namespace,
          uid: existing.metadata.uid,
          creationTimestamp: existing.metadata.creationTimestamp,
          ...(existing.metadata.deletionTimestamp ? { deletionTimestamp: existing.metadata.deletionTimestamp } : {}),
          ...(existing.metadata.generation !== undefined ? { generation: existing.metadata.generation } : {}),
        },
      };
      if (r.statusSubresource) merged.status = existing.status;
      if (!r.custom && r.plural === 'secrets') merged = foldStringData(merged);
      if (hasGeneration(r) && JSON.stringify(merged.spec) !== JSON.stringify(existing.spec)) {
        merged.metadata.generation = (existing.metadata.generation ?? 1) + 1;
      }
      validateObject(r, merged, validate, updateCauses(r, existing, merged));
      checkUpdate(r, existing, merged);
    }
    const fields = managedFields(r, existing, merged, options);
    merged = { ...merged, metadata: { ...merged.metadata } };
    if (fields.length) merged.metadata.managedFields = fields;
    else delete merged.metadata.managedFields;
    if (options.dryRun) return { ...merged, metadata: { ...merged.metadata, resourceVersion: existing.metadata.resourceVersion } };
    const stored = store.put(r, merged, 'MODIFIED');
    // An object being deleted goes away once its last finalizer is removed.
    if (stored.metadata.deletionTimestamp && !stored.metadata.finalizers?.length) finalizeDelete(r, stored);
    return stored;
  };

  return {
    store,
    registry,
    finalizeDelete,
    create(r, namespace, input, options = {}) {
      ensureKind(r, input);
      const body = decode(r, input, options, 'write');
      ensureNamespaceMatches(r, namespace, body);
      requireNamespace(r, namespace);
      const meta = { ...(body.metadata ?? {}) };
      if (!meta.name) {
        if (!meta.generateName) {
          throw invalid(r, '', [{ reason: 'FieldValueRequired', message: 'Required value: name or generateName is required', field: 'metadata.name' }]);
        }
        // Like the real names.SimpleNameGenerator: the prefix is cut so the name stays within 63 characters.
        meta.name = `${String(meta.generateName).slice(0, 58)}${randomSuffix()}`;
      }
      const name = String(meta.name);
      if (store.get(r, namespace, name)) throw alreadyExists(r, name);
      delete meta.resourceVersion;
      delete meta.deletionTimestamp;
      const now = Date.now();
      let obj: KubeObject = {
        ...body,
        apiVersion: apiVersionOf(r),
        kind: r.kind,
        metadata: {
          ...meta,
          name,
          ...(r.namespaced ? { namespace } : {}),
          uid: randomUUID(),
          creationTimestamp: kubeTime(now),
          ...(hasGeneration(r) ? { generation: 1 } : {}),
        },
      };
      if (!r.namespaced) delete obj.metadata.namespace;
      if (r.statusSubresource && !r.custom) delete obj.status;
      delete obj.metadata.managedFields;
      if (!r.custom && r.plural === 'secrets') obj = foldStringData(obj);
      validateObject(r, obj, validate);
      obj = applyCreateDefaults(r, obj);
      const fields = managedFields(r, undefined, obj, options);
      if (fields.length) obj.metadata.managedFields = fields;
      if (options.dryRun) return obj;
      return store.put(r, obj, 'ADDED');
    },
    get: (r, namespace, name) => current(r, namespace, name),
    list(r, namespace, query = {}) {
      const labels = parseLabelSelector(query.labelSelector);
      const fields = parseFieldSelector(query.fieldSelector, r.plural);
      let rv = store.revision();
      let objects: KubeObject[];
      if (query.resourceVersionMatch === 'Exact' && query.resourceVersion) {
        const at = Number(query.resourceVersion);
        if (at <= store.compactedRevision()) throw gone('The resourceVersion for the provided list is too old.');
        if (at > rv) throw new ApiError(status(504, 'Timeout', `Timeout: Too large resource version: ${at}, current: ${rv}`));
        // Rewind the current state through the history to the requested revision.
        const byKey = new Map(store.list(r, namespace).map((o) => [objectKey(o), o]));
        for (const change of store.changesSince(r, at).reverse()) {
          if (namespace !== undefined && change.object.metadata.namespace !== namespace) continue;
          const key = objectKey(change.object);
          if (change.type === 'ADDED') byKey.delete(key);
          else if (change.previous) byKey.set(key, change.previous);
        }
        objects = [...byKey.values()].sort((a, b) => objectKey(a).localeCompare(objectKey(b)));
        rv = at;
      } else {
        objects = store.list(r, namespace);
      }
      let after = '';
      if (query.continue) {
        const token = decodeContinue(query.continue);
        if (token.rv <= store.compactedRevision()) {
          throw gone(
            'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue value from the response.',
          );
        }
        after = token.after;
        rv = token.rv;
      }
      const matching = objects.filter((o) => (after === '' || objectKey(o) > after) && labels(o.metadata.labels) && fields(o));
      const limit = query.limit ? Number(query.limit) : 0;
      if (limit > 0 && matching.length > limit) {
        const page = matching.slice(0, limit);
        const last = objectKey(page[page.length - 1]!);
        return {
          items: page,
          resourceVersion: String(rv),
          continue: Buffer.from(JSON.stringify({ rv, after: last })).toString('base64url'),
          remainingItemCount: matching.length - limit,
        };
      }
      return { items: matching, resourceVersion: String(rv) };
    },
    replace(r, namespace, name, body, options = {}) {
      return update(r, current(r, namespace, name), body, options);
    },
    patch(r, namespace, name, contentType, body, options = {}) {
      const existing = current(r, namespace, name);
      const type = contentType.split(';')[0]!.trim();
      let next: Json;
      if (type === 'application/json-patch+json') next = jsonPatch(clone(existing), body);
      else if (type === 'application/merge-patch+json' || type === 'application/strategic-merge-patch+json') {
        next = mergePatch(clone(existing), body);
      } else throw unsupportedMediaType(type);
      // A patch never carries a stale resourceVersion unless the client put one in on purpose.
      if (next?.metadata?.resourceVersion === existing.metadata.resourceVersion || next?.metadata?.resourceVersion === undefined) {
        next.metadata = { ...next.metadata, resourceVersion: existing.metadata.resourceVersion };
      }
      return update(r, existing, next, options, 'patch');
    },
    delete(r, namespace, name, options = {}) {
      // ValidateDeleteOptions runs before the object is looked up.
      const optionCauses: StatusCause[] = [];
      if (options.orphanDependents !== undefined && options.propagationPolicy !== undefined) {
        optionCauses.push({
          reason: 'FieldValueInvalid',
          message: `Invalid value: ${JSON.stringify(options.propagationPolicy)}: orphanDependents and deletionPropagation cannot be both set`,
          field: 'propagationPolicy',
        });
      }
      if (options.propagationPolicy !== undefined && !['Orphan', 'Background', 'Foreground'].includes(options.propagationPolicy)) {
        optionCauses.push({
          reason: 'FieldValueNotSupported',
          message: `Unsupported value: ${JSON.stringify(options.propagationPolicy)}: supported values: "Foreground", "Background", "Orphan", "nil"`,
          field: 'propagationPolicy',
        });
      }
      if (optionCauses.length) {
        const parts = optionCauses.map((c) => `${c.field}: ${c.message}`);
        throw new ApiError(
          status(422, 'Invalid', `DeleteOptions.meta.k8s.io "" is invalid: ${parts.length === 1 ? parts[0] : `[${parts.join(', ')}]`}`, {
            group: 'meta.k8s.io',
            kind: 'DeleteOptions',
            causes: optionCauses,
          }),
        );
      }
      const existing = current(r, namespace, name);
      const pre = options.preconditions;
      if (pre?.uid && pre.uid !== existing.metadata.uid) {
        throw new ApiError(status(409, 'Conflict', `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${existing.metadata.uid}`));
      }
      if (pre?.resourceVersion && pre.resourceVersion !== existing.metadata.resourceVersion) {
        throw new ApiError(
          status(
            409,
            'Conflict',
            `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${existing.metadata.resourceVersion}`,
          ),
        );
      }
      const policy =
        options.propagationPolicy ?? (options.orphanDependents === true ? 'Orphan' : options.orphanDependents === false ? 'Background' : r.defaultPropagation);
      // kube-apiserver answers 202 only when the object outlives the call and the (deprecated) body field
      // orphanDependents is false; a propagationPolicy, even Foreground, gets 200 with the marked object.
      const pendingCode = options.orphanDependents === false ? 202 : 200;
      const success = (obj: KubeObject) => ({
        code: 200,
        body:
          r.custom || r.plural === 'pods'
            ? obj
            : { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name, group: r.group, kind: r.plural, uid: obj.metadata.uid } },
      });
      if (options.dryRun) return success(existing);
      const finalizers = existing.metadata.finalizers ?? [];
      if (existing.metadata.deletionTimestamp) {
        // Deleting again: only a switch to Foreground changes anything (the GC's finalizer is added).
        if (policy === 'Foreground' && !finalizers.includes('foregroundDeletion')) {
          const marked = store.put(r, { ...existing, metadata: { ...existing.metadata, finalizers: [...finalizers, 'foregroundDeletion'] } }, 'MODIFIED');
          return { code: pendingCode, body: marked };
        }
        return { code: pendingCode, body: existing };
      }
      const now = kubeTime();
      const isPod = r.plural === 'pods' && !r.custom;
      const grace = options.gracePeriodSeconds ?? existing.spec?.terminationGracePeriodSeconds ?? 30;
      const podNeedsKubelet = isPod && existing.spec?.nodeName && !['Succeeded', 'Failed'].includes(existing.status?.phase) && grace > 0;
      if (policy === 'Orphan') {
        for (const dep of store.dependents(existing.metadata.uid!)) {
          const refs = dep.object.metadata.ownerReferences!.filter((o) => o.uid !== existing.metadata.uid);
          const meta = { ...dep.object.metadata };
          if (refs.length) meta.ownerReferences = refs;
          else delete meta.ownerReferences;
          store.put(dep.resource, { ...dep.object, metadata: meta }, 'MODIFIED');
        }
      }
      if (policy === 'Foreground' || finalizers.length > 0 || podNeedsKubelet) {
        const meta = {
          ...existing.metadata,
          deletionTimestamp: now,
          deletionGracePeriodSeconds: isPod ? grace : 0,
          finalizers: policy === 'Foreground' ? [...new Set([...finalizers, 'foregroundDeletion'])] : finalizers,
        };
        if (!meta.finalizers.length) delete (meta as { finalizers?: string[] }).finalizers;
        const marked = store.put(r, { ...existing, metadata: meta }, 'MODIFIED');
        return { code: pendingCode, body: marked };
      }
      store.remove(r, existing);
      return success(existing);
    },
    writeStatus(r, obj, statusValue, metadata, manager = CONTROLLER_MANAGER) {
      const live = store.get(r, obj.metadata.namespace, obj.metadata.name!);
      if (!live || live.metadata.uid !== obj.metadata.uid) return obj;
      const next: KubeObject = { ...live, metadata: { ...live.metadata, ...metadata }, status: statusValue };
      const fields = managedFields(r, live, next, { fieldManager: manager, subresource: 'status' });
      if (fields.length) next.metadata.managedFields = fields;
      return store.put(r, next, 'MODIFIED');
    },
  };
}
