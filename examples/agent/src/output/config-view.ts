import type { Palette } from './color.js';
import { renderTable } from './table.js';

/** Leaves of a config as dotted paths (`builder.type`); arrays stay whole (`queues`). */
export function flattenConfig(value: unknown, prefix = ''): [string, unknown][] {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0 && prefix) return [[prefix, {}]];
    return entries.flatMap(([k, v]) => flattenConfig(v, prefix ? `${prefix}.${k}` : k));
  }
  return [[prefix, value]];
}

/** Where a key's value came from: its own entry in `origins`, else its nearest parent's, else `default`. */
export function originOf(origins: Record<string, string>, path: string): string {
  for (let p = path; p; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
    const o = origins[p];
    if (o !== undefined) return o;
  }
  return 'default';
}

/** KEY / VALUE / FROM table of the effective config (secrets already redacted by the caller). */
export function renderConfig(config: unknown, origins: Record<string, string>, c: Palette): string {
  const rows = flattenConfig(config)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v), c.dim(originOf(origins, k))]);
  return renderTable(['KEY', 'VALUE', 'FROM'], rows);
}
