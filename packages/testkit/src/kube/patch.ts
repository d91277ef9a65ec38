import { ApiError, badRequest, status } from './status.js';
import type { Json } from './types.js';

/** RFC 7386 JSON merge patch (also used for strategic-merge patches: lists are replaced, not merged by key). */
export function mergePatch(target: Json, patch: Json): Json {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return structuredClone(patch);
  const out: Record<string, Json> = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch as Record<string, Json>)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

function unescape(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw badRequest(`invalid JSON pointer: ${path}`);
  return path.slice(1).split('/').map(unescape);
}

function patchFailed(message: string): ApiError {
  return new ApiError(status(422, 'Invalid', message));
}

function parentOf(doc: Json, tokens: string[], op: string): { parent: Json; key: string } {
  let cur = doc;
  for (const t of tokens.slice(0, -1)) {
    if (cur === null || typeof cur !== 'object' || !(t in cur)) {
      throw patchFailed(`the server rejected our request due to an error in our request: doc is missing path: "/${tokens.join('/')}" (${op})`);
    }
    cur = Array.isArray(cur) ? cur[Number(t)] : cur[t];
  }
  return { parent: cur, key: tokens[tokens.length - 1] ?? '' };
}

function getAt(doc: Json, path: string): Json {
  let cur = doc;
  for (const t of pointer(path)) {
    if (cur === null || typeof cur !== 'object' || !(t in cur)) throw patchFailed(`doc is missing path: "${path}"`);
    cur = Array.isArray(cur) ? cur[Number(t)] : cur[t];
  }
  return cur;
}

function add(doc: Json, path: string, value: Json, op: string): Json {
  const tokens = pointer(path);
  if (tokens.length === 0) return structuredClone(value);
  const { parent, key } = parentOf(doc, tokens, op);
  if (Array.isArray(parent)) {
    const index = key === '-' ? parent.length : Number(key);
    if (!Number.isInteger(index) || index < 0 || index > parent.length) throw patchFailed(`index out of bounds: ${path}`);
    parent.splice(index, 0, structuredClone(value));
  } else if (parent !== null && typeof parent === 'object') parent[key] = structuredClone(value);
  else throw patchFailed(`doc is missing path: "${path}"`);
  return doc;
}

function remove(doc: Json, path: string, op: string): Json {
  const tokens = pointer(path);
  const { parent, key } = parentOf(doc, tokens, op);
  if (Array.isArray(parent)) {
    const index = Number(key);
    if (!(index >= 0 && index < parent.length)) throw patchFailed(`index out of bounds: ${path}`);
    parent.splice(index, 1);
  } else if (parent !== null && typeof parent === 'object' && key in parent) delete parent[key];
  else throw patchFailed(`the server rejected our request due to an error in our request: doc is missing path: "${path}"`);
  return doc;
}

/** RFC 6902 JSON patch (the default content type of `@kubernetes/client-node` 1.x patch calls). */
export function jsonPatch(target: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  let doc = structuredClone(target);
  for (const op of ops as Array<{ op: string; path: string; from?: string; value?: Json }>) {
    switch (op.op) {
      case 'add':
        doc = add(doc, op.path, op.value, 'add');
        break;
      case 'remove':
        doc = remove(doc, op.path, 'remove');
        break;
      case 'replace':
        getAt(doc, op.path);
        doc = add(remove(doc, op.path, 'replace'), op.path, op.value, 'replace');
        break;
      case 'move': {
        const value = getAt(doc, op.from ?? '');
        doc = add(remove(doc, op.from ?? '', 'move'), op.path, value, 'move');
        break;
      }
      case 'copy':
        doc = add(doc, op.path, getAt(doc, op.from ?? ''), 'copy');
        break;
      case 'test':
        if (JSON.stringify(getAt(doc, op.path)) !== JSON.stringify(op.value)) {
          throw patchFailed(`the server rejected our request due to an error in our request: testing value ${op.path} failed`);
        }
        break;
      default:
        throw badRequest(`Unexpected kind: ${op.op}`);
    }
  }
  return doc;
}
