import { z } from 'zod';
import { PRIORITIES } from '../../spec.js';
import { RUN_STATES } from '../../status.js';
import { zodIssues } from '../../validation.js';
import type { ItemRecord } from './types.js';

/** What an item file holds: the public record plus the token of the claim that wrote it. */
export interface StoredRecord extends ItemRecord {
  /** Format version of the file. */
  v: 1;
  /** Token of the claim this record belongs to; matches the claimed file's name once the claim is written. */
  claimToken?: string;
}

const isoString = z.string().max(64);
const files = z.array(z.string().max(4096)).max(1000).optional();

// Loose on purpose: an item file is outside input, but fields added by a newer version must survive.
const storedSchema = z
  .object({
    v: z.literal(1).optional(),
    id: z.string().min(1).max(128),
    queue: z.string().max(200),
    priority: z.enum(PRIORITIES).optional(),
    state: z.enum(['queued', 'claimed', 'acked', 'finished', 'failed']).optional(),
    enqueuedAt: isoString,
    spec: z.unknown(),
    claimToken: z.string().max(64).optional(),
    claimedBy: z.string().max(256).optional(),
    claimedPid: z.number().int().optional(),
    claimedHost: z.string().max(256).optional(),
    claimedAt: isoString.optional(),
    leaseUntil: isoString.optional(),
    ackedAt: isoString.optional(),
    runId: z.string().max(256).optional(),
    warnings: z.array(z.object({ stage: z.string(), message: z.string(), at: isoString, files }).passthrough()).optional(),
    failure: z
      .object({ stage: z.enum(['agent', 'build', 'run']), message: z.string(), at: isoString, files })
      .passthrough()
      .optional(),
    finishedAt: isoString.optional(),
    runState: z.enum(RUN_STATES).optional(),
    exitCode: z.number().int().nullable().optional(),
    requeuedFrom: z.string().max(128).optional(),
    attempts: z.number().int().min(0).optional(),
  })
  .passthrough();

export type ParseResult = { ok: true; record: StoredRecord } | { ok: false; problem: string };

/**
 * Parses an item file's text. `fallback` fills what the file name already says (id, queue, priority),
 * which wins over the content: the name is what was claimed.
 */
export function parseRecord(text: string, fallback: Pick<ItemRecord, 'id' | 'queue' | 'priority'>): ParseResult {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    const empty = text.trim() === '' ? ' (the file is empty: a half-written or truncated file)' : '';
    return { ok: false, problem: `it is not valid JSON: ${(error as Error).message}${empty}` };
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    return { ok: false, problem: `expected a JSON object, found ${Array.isArray(json) ? 'an array' : String(json === null ? 'null' : typeof json)}` };
  }
  if (!('spec' in json)) return { ok: false, problem: 'it has no "spec" field' };
  const parsed = storedSchema.safeParse(json);
  if (!parsed.success) {
    const issues = zodIssues(parsed.error, json).map((i) => `${i.path || '(root)'}: ${i.message}`);
    return { ok: false, problem: `it is not an item record: ${issues.join('; ')}` };
  }
  const data = parsed.data;
  const record: StoredRecord = {
    ...(data as Omit<StoredRecord, 'v' | 'state' | 'warnings' | 'attempts'>),
    v: 1,
    id: fallback.id,
    queue: fallback.queue,
    priority: fallback.priority,
    state: data.state ?? 'queued',
    warnings: (data.warnings ?? []) as StoredRecord['warnings'],
    attempts: data.attempts ?? 0,
  };
  return { ok: true, record };
}

/** The public view of a stored record (the claim token is internal). */
export function toItemRecord(stored: StoredRecord, state = stored.state): ItemRecord {
  const { v: _v, claimToken: _t, ...rest } = stored;
  return { ...rest, state };
}

export function serialize(record: StoredRecord): string {
  return JSON.stringify(record);
}
