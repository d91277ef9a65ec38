import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { agentConfigJsonSchema, renderAgentConfigJsonSchema } from './json-schema.js';
import { agentConfigSchema } from './schema.js';

const committed = fileURLToPath(new URL('../../../../schema/launch-config.schema.json', import.meta.url));

type JsonObject = { type?: string; properties?: Record<string, JsonObject>; additionalProperties?: unknown; default?: unknown; pattern?: string };

describe('agentConfigJsonSchema', () => {
  it('matches the committed schema/launch-config.schema.json (regenerate: npx tsx scripts/generate-config-schema.ts)', async () => {
    expect(await readFile(committed, 'utf8')).toBe(renderAgentConfigJsonSchema());
  });

  it('describes every key, refuses unknown ones and shows defaults', () => {
    const schema = agentConfigJsonSchema() as JsonObject;
    expect(Object.keys(schema.properties ?? {})).toEqual(Object.keys(agentConfigSchema.shape));
    expect(schema.additionalProperties).toBe(false);
    for (const block of ['builder', 'registry']) expect(schema.properties?.[block]?.additionalProperties).toBe(false);
    // W&B accepts other environment keys with a warning (its GCP docs write environment.project); so do we.
    expect(schema.properties?.['environment']?.additionalProperties).toEqual({});
    expect(schema.properties?.['max_jobs']?.default).toBe(1);
    expect(schema.properties?.['start_timeout']?.default).toBe(1800);
    expect(schema.properties?.['builder']?.properties?.['kaniko-image']?.default).toBe('gcr.io/kaniko-project/executor:v1.11.0');
  });

  it('carries the context store pattern so editors flag a bad URI', () => {
    const schema = agentConfigJsonSchema() as JsonObject;
    const pattern = new RegExp(schema.properties?.['builder']?.properties?.['build-context-store']?.pattern ?? '^$');
    expect(pattern.test('s3://bucket/prefix')).toBe(true);
    expect(pattern.test('bucket/prefix')).toBe(false);
  });
});
