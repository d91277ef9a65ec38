import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, extname, join } from 'node:path';
import {
  createEmbeddedQueue,
  LaunchError,
  LaunchValidationError,
  mergeQueueConfig,
  normalizeLaunchSpec,
  silentLogger,
  type AgentConfig,
  type EmbeddedQueue,
  type LaunchSpec,
  type QueueConfig,
  type SpecWarning,
} from '@launch/core';
import { variableType } from '@launch/core/internal';
import yaml from 'js-yaml';
import { CONFIG_FLAGS, CONFIG_FLAGS_HELP, sourceFlag } from '../flags.js';
import type { Io } from '../io.js';
import { loadConfig } from '../load-config.js';
import { renderTable } from '../output/table.js';
import { chooseSourceKind, selectSource, stateDirFor } from '../select-source.js';
import { parseCommandArgs, UsageError } from '../usage.js';

export const QUEUE_HELP = `Usage: launch-agent queue <create|show|edit|list|delete> [options]

Queue configs of the embedded queue, as W&B queues hold them: the resource every item of the queue
runs on, a resource_args template with {{variables}}, and each variable's type (string, integer,
number), bounds, allowed values and default. Merged into every item at enqueue (docs/launch-spec.md).

Commands:
  create NAME --file FILE     store a queue config (YAML or JSON); refused if NAME has one
  create NAME --resource R    store a config that only sets the resource
  show NAME [--json]          print NAME's config (YAML, or JSON)
  edit NAME [--file FILE]     open NAME's config in $VISUAL / $EDITOR (default vi), or take FILE;
                              validated before it is saved (creates the config if NAME has none)
  list [--json]               every queue config: resource and variables
  delete NAME                 remove NAME's config (its items stay queued)

Options:
      --file FILE         a queue config in YAML or JSON
      --resource R        the resource (create without --file)
      --json              JSON on stdout
${CONFIG_FLAGS_HELP}

A queue config:
  resource: kubernetes
  resource_args:
    kubernetes:
      spec:
        template: {spec: {containers: [{resources: {limits: {cpu: "{{cpu}}"}}}]}}
  template_variables:
    cpu: {schema: {type: integer, minimum: 1, maximum: 8, default: 2}}`;

const FLAGS = {
  ...CONFIG_FLAGS,
  file: { type: 'string' },
  resource: { type: 'string' },
  json: { type: 'boolean' },
} as const;

const SUBCOMMANDS = ['create', 'show', 'edit', 'list', 'delete'] as const;

export async function queueCommand(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    io.stdout.write(QUEUE_HELP + '\n');
    return sub === undefined ? 2 : 0;
  }
  if (!(SUBCOMMANDS as readonly string[]).includes(sub)) throw new UsageError(`unknown queue command "${sub}" (expected ${SUBCOMMANDS.join(', ')})`, 'queue');
  const command = `queue ${sub}`;
  const { values: v, positionals } = parseCommandArgs(command, rest, FLAGS, true);
  if (v.help) {
    io.stdout.write(QUEUE_HELP + '\n');
    return 0;
  }
  const wantsName = sub !== 'list';
  if (positionals.length !== (wantsName ? 1 : 0)) {
    throw new UsageError(
      wantsName
        ? `expected one queue name, got ${positionals.length === 0 ? 'none' : positionals.map((p) => `"${p}"`).join(' ')}`
        : `unexpected argument "${positionals[0]}"`,
      command,
    );
  }
  const name = positionals[0] ?? '';
  const allowed: Record<(typeof SUBCOMMANDS)[number], string[]> = { create: ['file', 'resource'], show: ['json'], edit: ['file'], list: ['json'], delete: [] };
  for (const flag of ['file', 'resource', 'json'] as const) {
    if (v[flag] !== undefined && !allowed[sub as (typeof SUBCOMMANDS)[number]].includes(flag))
      throw new UsageError(`--${flag} does not apply to "queue ${sub}"`, command);
  }

  const { config, origins } = await loadConfig(io, v.config, { stateDir: v['state-dir'], source: sourceFlag(command, v.source) });
  if (chooseSourceKind(config, io.env, origins, io.homedir) === 'wandb') {
    throw new UsageError(
      'queue configs here belong to the embedded queue; a W&B queue is configured in the W&B UI (or with wandb.Api().upsert_run_queue). Pass --source embedded',
      command,
    );
  }
  const selected = await selectSource({ config, origins, env: io.env, homedir: io.homedir, logger: silentLogger, command });
  const queue = selected.embedded!;
  try {
    return await asUsage(command, () => {
      switch (sub) {
        case 'create':
          return create(io, queue, name, v.file, v.resource, command);
        case 'show':
          return show(io, queue, name, v.json === true, command);
        case 'edit':
          return edit(io, queue, name, v.file, command);
        case 'list':
          return list(io, queue, v.json === true);
        default:
          return remove(io, queue, name, command);
      }
    });
  } finally {
    await queue.close();
  }
}

/** Input problems of the core (a bad config, a queue that has one) as usage errors: exit 2 with every issue listed. */
async function asUsage<T>(command: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (
      LaunchValidationError.isInstance(error) ||
      (LaunchError.isInstance(error) && error.code.startsWith('queue_config.')) ||
      (LaunchError.isInstance(error) && error.code === 'queue.invalid_name')
    ) {
      throw new UsageError(`${error.message}${error.hint ? `\nhint: ${error.hint}` : ''}`, command);
    }
    throw error;
  }
}

/** Reads a queue config file (YAML, or JSON for `.json`). */
async function readConfigFile(path: string, command: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, command);
  }
  return parseConfigText(text, path, command);
}

function parseConfigText(text: string, path: string, command: string): unknown {
  try {
    return extname(path).toLowerCase() === '.json' ? JSON.parse(text) : yaml.load(text);
  } catch (error) {
    throw new UsageError(`${path} is not valid ${extname(path).toLowerCase() === '.json' ? 'JSON' : 'YAML'}: ${(error as Error).message}`, command);
  }
}

async function create(io: Io, queue: EmbeddedQueue, name: string, file: string | undefined, resource: string | undefined, command: string): Promise<number> {
  if ((file === undefined) === (resource === undefined))
    throw new UsageError('give the config with --file FILE, or only its resource with --resource R', command);
  const raw = file !== undefined ? await readConfigFile(file, command) : { resource };
  const saved = await queue.setQueueConfig(name, raw, 'create');
  io.stderr.write(`launch: queue "${name}": config created (${summary(saved)})\n`);
  return 0;
}

async function show(io: Io, queue: EmbeddedQueue, name: string, json: boolean, command: string): Promise<number> {
  const config = await queue.getQueueConfig(name);
  if (!config) throw new UsageError(`queue "${name}" has no queue config (create one with "launch-agent queue create ${name} --file FILE")`, command);
  io.stdout.write(json ? JSON.stringify(config, null, 2) + '\n' : toYaml(config));
  return 0;
}

async function list(io: Io, queue: EmbeddedQueue, json: boolean): Promise<number> {
  const all = await queue.listQueueConfigs();
  if (json) {
    io.stdout.write(JSON.stringify(all, null, 2) + '\n');
    return 0;
  }
  if (all.length === 0) {
    io.stdout.write('No queue configs.\n');
    return 0;
  }
  const rows = all.map((q) => [q.queue, q.config?.resource ?? '-', q.config ? variablesText(q.config) || '-' : `unreadable: ${q.problem ?? ''}`]);
  io.stdout.write(renderTable(['QUEUE', 'RESOURCE', 'TEMPLATE VARIABLES'], rows) + '\n');
  return all.some((q) => q.problem !== undefined) ? 1 : 0;
}

async function remove(io: Io, queue: EmbeddedQueue, name: string, command: string): Promise<number> {
  if (!(await queue.deleteQueueConfig(name))) throw new UsageError(`queue "${name}" has no queue config`, command);
  io.stderr.write(`launch: queue "${name}": config deleted (queued items keep the spec they were merged with)\n`);
  return 0;
}

const STARTER = `# Queue config of "%s" (docs/cli.md#launch-agent-queue). Lines starting with # are ignored.
resource: local-process
resource_args: {}
template_variables: {}
`;

/** `queue edit`: the editor (or --file), then the same checks as create; an invalid edit is kept in a file and nothing is saved. */
async function edit(io: Io, queue: EmbeddedQueue, name: string, file: string | undefined, command: string): Promise<number> {
  // A stored config broken by hand must still be replaceable: edit starts afresh, saying why.
  const current = await queue.getQueueConfig(name).catch((error: unknown) => {
    if (!LaunchError.isInstance(error)) throw error;
    io.stderr.write(`launch: the stored config of queue "${name}" is unusable (${error.message.split('\n')[0]}); it will be replaced\n`);
    return undefined;
  });
  if (file !== undefined) {
    const saved = await queue.setQueueConfig(name, await readConfigFile(file, command), 'upsert');
    io.stderr.write(`launch: queue "${name}": config ${current ? 'saved' : 'created'} (${summary(saved)})\n`);
    return 0;
  }
  const before = current ? toYaml(current) : STARTER.replace('%s', name);
  const dir = await mkdtemp(join(tmpdir(), 'launch-queue-edit-'));
  const path = join(dir, `${basename(encodeURIComponent(name))}.yaml`);
  await writeFile(path, before);
  const editor = io.env.VISUAL || io.env.EDITOR || 'vi';
  // Through a shell, as git does: $EDITOR may carry arguments ("code --wait").
  const ran = spawnSync('/bin/sh', ['-c', `${editor} "$1"`, 'launch-agent-editor', path], { stdio: 'inherit', env: io.env as NodeJS.ProcessEnv });
  if (ran.error || ran.status !== 0) {
    await rm(dir, { recursive: true, force: true });
    const why = ran.error ? ran.error.message : ran.signal ? `was killed by ${ran.signal}` : `exited with code ${ran.status}`;
    io.stderr.write(`launch: the editor (${editor}) ${why}: nothing saved\n`);
    return 1;
  }
  const after = await readFile(path, 'utf8');
  if (after === before) {
    await rm(dir, { recursive: true, force: true });
    io.stderr.write(`launch: queue "${name}": no changes\n`);
    return 0;
  }
  try {
    const saved = await queue.setQueueConfig(name, parseConfigText(after, path, command), 'upsert');
    await rm(dir, { recursive: true, force: true });
    io.stderr.write(`launch: queue "${name}": config ${current ? 'saved' : 'created'} (${summary(saved)})\n`);
    return 0;
  } catch (error) {
    const text =
      error instanceof UsageError
        ? error.message
        : LaunchValidationError.isInstance(error)
          ? `${error.message}${error.hint ? `\nhint: ${error.hint}` : ''}`
          : undefined;
    if (text === undefined) throw error;
    io.stderr.write(
      `launch-agent ${command}: ${text}\nNothing was saved. Your edit is kept in ${path}; fix it and run "launch-agent queue edit ${name} --file ${path}".\n`,
    );
    return 2;
  }
}

function toYaml(config: QueueConfig): string {
  return yaml.dump(config, { noRefs: true, lineWidth: 120 });
}

function variablesText(config: QueueConfig): string {
  return Object.entries(config.template_variables ?? {})
    .map(([n, d]) => `${n}:${variableType(d)}${d.schema.default !== undefined ? `=${String(d.schema.default)}` : ''}`)
    .join(', ');
}

function summary(config: QueueConfig): string {
  const vars = variablesText(config);
  return `resource ${config.resource}${vars ? `; template variables ${vars}` : ''}`;
}

/**
 * `--template-var NAME=VALUE` flags (W&B's `--set-var`) into a mapping. The value is everything after
 * the first `=`; it is typed later, against the queue's declaration.
 */
export function parseTemplateVarFlags(pairs: string[], command: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--template-var expects NAME=VALUE, got "${pair}"`, command);
    const name = pair.slice(0, eq);
    if (Object.hasOwn(out, name)) throw new UsageError(`--template-var ${name} is given twice`, command);
    out[name] = pair.slice(eq + 1);
  }
  return out;
}

/** What {@link prepareQueueSpec} returns. */
export interface PreparedSpec {
  /** Whether the embedded queue's config (or a template value) applies; false on a W&B source. */
  embedded: boolean;
  /** The spec to enqueue, with `templateVariables`: a resource the spec got only by default is left to the queue. */
  input: LaunchSpec;
  templateVariables: Record<string, string>;
  /** The spec the queue will store (its config merged in), checked as the agent checks items. */
  merged: LaunchSpec;
  warnings: SpecWarning[];
  notes: string[];
}

/**
 * The queue config of `queue` applied to a spec built by `buildSpec`, as `enqueue` stores it and `check`
 * shows it. `base` is the spec file as read: when it names no resource, the resource `buildSpec` defaulted
 * (`-- CMD` gives local-process, `--context` local-container) yields to the queue's. Bad template values
 * and specs the queue config conflicts with are UsageErrors (exit 2) listing every issue. On a W&B source
 * nothing is merged here (W&B's server merges at push), and `--template-var` is refused: its values could
 * not be checked against the queue's schema.
 */
export async function prepareQueueSpec(options: {
  io: Io;
  config: AgentConfig;
  origins?: Record<string, string>;
  queue: string;
  spec: LaunchSpec;
  base: Record<string, unknown> | undefined;
  templateVars: string[];
  command: string;
}): Promise<PreparedSpec> {
  const { io, config, queue, spec, command } = options;
  const templateVariables = parseTemplateVarFlags(options.templateVars, command);
  if (chooseSourceKind(config, io.env, options.origins, io.homedir) === 'wandb') {
    if (Object.keys(templateVariables).length > 0) {
      throw new UsageError(
        "--template-var is checked against the queue's schema, which this agent knows for embedded queues only; for a W&B queue put the values in the spec's template_variables, typed as the queue declares them",
        command,
      );
    }
    return { embedded: false, input: spec, templateVariables, merged: spec, warnings: [], notes: [] };
  }
  const embedded = createEmbeddedQueue({ stateDir: stateDirFor(config, io.env, io.homedir), logger: silentLogger });
  let queueConfig: QueueConfig | undefined;
  try {
    queueConfig = await asUsage(command, () => embedded.getQueueConfig(queue));
  } finally {
    await embedded.close();
  }
  let input = spec;
  if (queueConfig && (options.base?.['resource'] === undefined || options.base['resource'] === null)) {
    const { resource: _defaulted, ...rest } = spec;
    input = rest;
  }
  return asUsage(command, async () => {
    const merged = mergeQueueConfig(queueConfig, input, { queue, templateVariables });
    if (!queueConfig) return { embedded: true, input, templateVariables, merged: input, warnings: [], notes: [] };
    const { spec: checked, warnings } = normalizeLaunchSpec(merged.spec);
    const values = Object.entries(merged.values).map(([k, val]) => `${k}=${JSON.stringify(val)}`);
    const notes = [
      `queue "${queue}"'s config merged in: resource ${queueConfig.resource}${values.length > 0 ? `; template variables ${values.join(', ')}` : ''}`,
    ];
    return { embedded: true, input, templateVariables, merged: checked, warnings, notes };
  });
}
