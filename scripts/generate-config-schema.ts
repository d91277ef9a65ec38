/**
 * Writes schema/launch-config.schema.json from the zod schema of the agent config.
 * Run after changing packages/core/src/config/schema.ts: `npx tsx scripts/generate-config-schema.ts`.
 * With `--check` it only reports (exit 1) when the committed file is out of date.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { renderAgentConfigJsonSchema } from '../packages/core/src/config/json-schema.js';

const target = fileURLToPath(new URL('../schema/launch-config.schema.json', import.meta.url));
const text = renderAgentConfigJsonSchema();

if (process.argv.includes('--check')) {
  const current = await readFile(target, 'utf8').catch(() => '');
  if (current !== text) {
    process.stderr.write(`${target} is out of date; run: npx tsx scripts/generate-config-schema.ts\n`);
    process.exit(1);
  }
  process.stderr.write(`${target} is up to date\n`);
} else {
  await writeFile(target, text);
  process.stderr.write(`wrote ${target}\n`);
}
