import { z } from 'zod';
import { agentConfigSchema } from './schema.js';

/**
 * The JSON Schema of `launch-config.yaml` (draft 2020-12), generated from the zod schema, for
 * editors. It describes the file as written (`io: 'input'`): defaults are shown, transforms are
 * not. Checks only code can do (registry URIs, cross-field rules) are enforced by the agent, not here.
 */
export function agentConfigJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(agentConfigSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return {
    $schema: schema['$schema'],
    title: 'Launch agent config (launch-config.yaml)',
    description: "Config of the Launch agent, compatible with W&B's launch-config.yaml. See docs/config.md.",
    ...schema,
  };
}

/** The committed file's exact text (`schema/launch-config.schema.json`): two-space JSON and a final newline. */
export function renderAgentConfigJsonSchema(): string {
  return `${JSON.stringify(agentConfigJsonSchema(), null, 2)}\n`;
}
