import * as models from '@kubernetes/client-node';
import type { Json } from './types.js';

/**
 * The fields each built-in type declares, taken from `@kubernetes/client-node`'s generated models (the same OpenAPI
 * the client was built from). The real server decodes a request into Go structs, so a field the struct lacks is
 * "unknown": dropped, warned about or refused depending on `fieldValidation`.
 */
interface Attribute {
  baseName: string;
  type: string;
}

type ModelClass = { getAttributeTypeMap?: () => Attribute[] };
const registry = models as unknown as Record<string, ModelClass | undefined>;
const cache = new Map<string, Map<string, string> | null>();

/** Field name → declared type of a model, or undefined when the name is not a model (a scalar, `any`, …). */
export function fieldsOf(typeName: string): Map<string, string> | undefined {
  const hit = cache.get(typeName);
  if (hit !== undefined) return hit ?? undefined;
  const model = registry[typeName];
  const fields = model && typeof model.getAttributeTypeMap === 'function' ? new Map(model.getAttributeTypeMap().map((a) => [a.baseName, a.type])) : null;
  cache.set(typeName, fields);
  return fields ?? undefined;
}

const ARRAY = /^Array<(.+)>$/;
const MAP = /^\{ \[key: string\]: (.+); \}$/;

/** What a declared type is: a model (struct), a list or map of something, or a leaf. */
export type TypeShape = { kind: 'struct'; name: string } | { kind: 'list'; of: string } | { kind: 'map'; of: string } | { kind: 'leaf' };

const shapes = new Map<string, TypeShape>();

export function shapeOf(type: string): TypeShape {
  let shape = shapes.get(type);
  if (shape) return shape;
  const list = ARRAY.exec(type);
  const map = MAP.exec(type);
  if (list) shape = { kind: 'list', of: list[1]! };
  else if (map) shape = { kind: 'map', of: map[1]! };
  else if (fieldsOf(type)) shape = { kind: 'struct', name: type };
  else shape = { kind: 'leaf' };
  shapes.set(type, shape);
  return shape;
}

const isPlainObject = (v: unknown): v is Record<string, Json> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Removes, in place, every field the type does not declare, and returns their paths in the form the apiserver's
 * strict decoder reports them (`spec.template.spec.containers[0].foo`), in document order.
 */
export function pruneUnknownFields(value: Json, typeName: string): string[] {
  const unknown: string[] = [];
  const walk = (v: Json, type: string, path: string) => {
    const shape = shapeOf(type);
    if (shape.kind === 'list') {
      if (Array.isArray(v)) v.forEach((item, i) => walk(item, shape.of, `${path}[${i}]`));
      return;
    }
    if (shape.kind === 'map') {
      if (isPlainObject(v)) for (const [k, item] of Object.entries(v)) walk(item, shape.of, `${path}[${k}]`);
      return;
    }
    if (shape.kind !== 'struct' || !isPlainObject(v)) return;
    const fields = fieldsOf(shape.name)!;
    for (const key of Object.keys(v)) {
      const at = path ? `${path}.${key}` : key;
      const fieldType = fields.get(key);
      if (fieldType === undefined) {
        unknown.push(at);
        delete v[key];
      } else walk(v[key], fieldType, at);
    }
  };
  walk(value, typeName, '');
  return unknown;
}
