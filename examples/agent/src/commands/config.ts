import { agentConfigJsonSchema, loadAgentConfig } from '@launch/core';
import { CONFIG_FLAGS, CONFIG_FLAGS_HELP, sourceFlag } from '../flags.js';
import type { Io } from '../io.js';
import { asConfigError, loadConfig } from '../load-config.js';
import { colorEnabled, palette } from '../output/color.js';
import { renderConfig } from '../output/config-view.js';
import { cliRedactor } from '../redaction.js';
import { checkContextStore, describeBuildSetup } from '../select-builder.js';
import { chooseSourceKind } from '../select-source.js';
import { intFlag, parseCommandArgs, UsageError } from '../usage.js';

export const CONFIG_HELP = `Usage: launch-agent config <check|schema> [options]

Commands:
  check     validate the agent config and print the effective values with where each came from
            (default, file, environment, flag); secrets are redacted. Exit 2 on a bad config.
  schema    print the config's JSON Schema (for editors and CI checks)`;

export const CONFIG_CHECK_HELP = `Usage: launch-agent config check [options]

Validates the agent config (file, then environment, then flags) and prints the effective values
with where each came from. Every bad field is listed; exit 2 when any is bad.

Options:
      --json              print {"path", "source", "config", "origins", "warnings"} on stdout
      --from-values FILE  check the agent config held by a Helm values file (its launchConfig)
  -q, --queue NAME        as for run: check the config the agent would use with these flags
  -e, --entity NAME
  -j, --max-jobs N
${CONFIG_FLAGS_HELP}`;

export const CONFIG_SCHEMA_HELP = `Usage: launch-agent config schema

Prints the JSON Schema of the agent config (launch-config.yaml) on stdout.`;

const CHECK_FLAGS = {
  ...CONFIG_FLAGS,
  json: { type: 'boolean' },
  'from-values': { type: 'string' },
  queue: { type: 'string', short: 'q', multiple: true },
  entity: { type: 'string', short: 'e' },
  'max-jobs': { type: 'string', short: 'j' },
} as const;

export async function configCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    io.stdout.write(CONFIG_HELP + '\n');
    return sub === undefined ? 2 : 0;
  }
  if (sub === 'schema') {
    const { values } = parseCommandArgs('config schema', rest, { help: { type: 'boolean', short: 'h' } } as const);
    io.stdout.write((values.help ? CONFIG_SCHEMA_HELP : JSON.stringify(agentConfigJsonSchema(), null, 2)) + '\n');
    return 0;
  }
  if (sub !== 'check') throw new UsageError(`unknown config command "${sub}" (expected check or schema)`, 'config');
  const { values: v } = parseCommandArgs('config check', rest, CHECK_FLAGS);
  if (v.help) {
    io.stdout.write(CONFIG_CHECK_HELP + '\n');
    return 0;
  }
  if (v['from-values'] !== undefined && v.config !== undefined) {
    throw new UsageError('give either --config or --from-values, not both', 'config check');
  }
  const fromValues = v['from-values'];
  const flags = {
    queues: v.queue,
    entity: v.entity,
    maxJobs: intFlag('config check', 'max-jobs', v['max-jobs']),
    stateDir: v['state-dir'],
    source: sourceFlag('config check', v.source),
  };
  const loaded =
    fromValues === undefined
      ? await loadConfig(io, v.config, flags)
      : await loadAgentConfig({ path: fromValues, env: io.env, homedir: io.homedir, flags, helmValues: true }).catch((error: unknown) => {
          throw asConfigError(error);
        });
  const redactor = cliRedactor(io.env, loaded.config.api_key);
  const config = redactor.redactValue(loaded.config);
  const source = chooseSourceKind(loaded.config, io.env, loaded.origins);
  if (loaded.config.queues.length === 0) {
    loaded.warnings.push(
      source === 'wandb'
        ? 'queues: no queue configured: `launch-agent run` refuses to start; set queues (or queue) in the config or pass --queue'
        : 'queues: no queue configured: `launch-agent run` serves the embedded queue "default"; set queues (or queue) in the config or pass --queue to choose',
    );
  }
  if (v.json) {
    io.stdout.write(
      redactor.redact(JSON.stringify({ path: loaded.path ?? null, source, config, origins: loaded.origins, warnings: loaded.warnings }, null, 2)) + '\n',
    );
    return 0;
  }
  const c = palette(colorEnabled(io.stdout, io.env));
  const head = `${c.green('config OK')}${loaded.path ? ` (${loaded.path})` : ' (no config file; defaults, environment and flags)'}; queue source: ${source}`;
  const warnings = loaded.warnings.map((w) => c.yellow(`warning: ${w}`)).join('\n');
  io.stdout.write(redactor.redact(`${head}\n${warnings ? warnings + '\n' : ''}\n${renderConfig(config, loaded.origins, c)}`) + '\n');
  // Which builder, registry and runner for images `run` would use, and every configured key it cannot use.
  const build = describeBuildSetup(config, io.env);
  const store = await checkContextStore(loaded.config, io.env, io.homedir);
  if (store) build.push(store);
  if (build.length > 0) io.stdout.write(redactor.redact(`\n${build.join('\n')}`) + '\n');
  return build.some((l) => l.startsWith('error:')) ? 2 : 0;
}
