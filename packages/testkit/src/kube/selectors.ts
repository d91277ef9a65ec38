import { badRequest } from './status.js';
import type { KubeObject } from './types.js';

type Requirement =
  | { key: string; op: 'exists' | 'notexists' }
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'gt' | 'lt'; value: number };

export type Selector = (labels: Record<string, string> | undefined) => boolean;

/** Splits on commas that are not inside `( … )`, as the label selector grammar requires. */
function splitTop(input: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of input) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

function parseRequirement(text: string): Requirement {
  let m = /^(!)?\s*([A-Za-z0-9][-A-Za-z0-9_./]*)$/.exec(text);
  if (m) return { key: m[2]!, op: m[1] ? 'notexists' : 'exists' };
  m = /^([A-Za-z0-9][-A-Za-z0-9_./]*)\s*(==|!=|=)\s*([-A-Za-z0-9_.]*)$/.exec(text);
  if (m) return { key: m[1]!, op: m[2] === '!=' ? 'notin' : 'in', values: [m[3]!] };
  m = /^([A-Za-z0-9][-A-Za-z0-9_./]*)\s+(in|notin)\s+\(([^)]*)\)$/.exec(text);
  if (m) {
    const values = m[3]!.split(',').map((v) => v.trim());
    return { key: m[1]!, op: m[2] as 'in' | 'notin', values };
  }
  m = /^([A-Za-z0-9][-A-Za-z0-9_./]*)\s*([<>])\s*(-?\d+)$/.exec(text);
  if (m) return { key: m[1]!, op: m[2] === '>' ? 'gt' : 'lt', value: Number(m[3]) };
  throw badRequest(`unable to parse requirement: found '${text}', expected: in, notin, =, ==, !=, gt, lt`);
}

/** Parses a label selector (equality, `!=`, `in`, `notin`, exists, `!key`, `gt`/`lt`); a bad one is a 400 like the real server's. */
export function parseLabelSelector(input: string | undefined): Selector {
  if (!input || input.trim() === '') return () => true;
  const reqs = splitTop(input).map(parseRequirement);
  return (labels) => {
    const l = labels ?? {};
    return reqs.every((r) => {
      const has = Object.prototype.hasOwnProperty.call(l, r.key);
      const v = l[r.key];
      switch (r.op) {
        case 'exists':
          return has;
        case 'notexists':
          return !has;
        case 'in':
          return has && r.values.includes(v!);
        case 'notin':
          return !has || !r.values.includes(v!);
        case 'gt':
          return has && Number(v) > r.value;
        case 'lt':
          return has && Number(v) < r.value;
      }
    });
  };
}

/** Fields the real apiserver lets clients select on, per resource (beyond metadata.name / metadata.namespace). */
const SELECTABLE_FIELDS: Record<string, string[]> = {
  pods: [
    'spec.nodeName',
    'spec.restartPolicy',
    'spec.schedulerName',
    'spec.serviceAccountName',
    'spec.hostNetwork',
    'status.phase',
    'status.podIP',
    'status.nominatedNodeName',
  ],
  events: [
    'involvedObject.kind',
    'involvedObject.namespace',
    'involvedObject.name',
    'involvedObject.uid',
    'involvedObject.apiVersion',
    'involvedObject.resourceVersion',
    'involvedObject.fieldPath',
    'reason',
    'reportingComponent',
    'source',
    'type',
  ],
  secrets: ['type'],
  jobs: ['status.successful'],
};

function fieldValue(obj: KubeObject, field: string): string {
  if (field === 'status.successful') return String(obj.status?.succeeded ?? 0);
  if (field === 'source') return String((obj as { source?: { component?: string } }).source?.component ?? '');
  let cur: unknown = obj;
  for (const part of field.split('.')) {
    if (cur === null || typeof cur !== 'object') return '';
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur === undefined || cur === null ? '' : String(cur);
}

/** Parses a field selector (`=`, `==`, `!=` on supported fields); an unsupported field is a 400 `field label not supported`. */
export function parseFieldSelector(input: string | undefined, plural: string): (obj: KubeObject) => boolean {
  if (!input || input.trim() === '') return () => true;
  const allowed = new Set(['metadata.name', 'metadata.namespace', ...(SELECTABLE_FIELDS[plural] ?? [])]);
  const reqs = splitTop(input).map((text) => {
    const m = /^([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*)$/.exec(text);
    if (!m) throw badRequest(`invalid selector: '${input}'; can't understand '${text}'`);
    if (!allowed.has(m[1]!)) throw badRequest(`field label not supported: ${m[1]}`);
    return { field: m[1]!, negate: m[2] === '!=', value: m[3]! };
  });
  return (obj) => reqs.every((r) => (fieldValue(obj, r.field) === r.value) !== r.negate);
}
