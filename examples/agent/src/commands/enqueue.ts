import { LaunchValidationError, PRIORITIES, silentLogger, type EmbeddedQueue, type ItemRecord } from '@launch/core';
import { CONFIG_FLAGS, CONFIG_FLAGS_HELP, SPEC_FLAGS, sourceFlag } from '../flags.js';
import { dryRun } from './check.js';
import { prepareQueueSpec } from './queue.js';
import type { Io } from '../io.js';
import { loadConfig } from '../load-config.js';
import { colorEnabled, palette } from '../output/color.js';
import { describeResult } from '../output/item-format.js';
import { selectSource } from '../select-source.js';
import { buildSpec, readSpecFile } from '../spec-input.js';
import { choiceFlag, parseCommandArgs, UsageError } from '../usage.js';

export const ENQUEUE_HELP = `Usage: launch-agent enqueue --queue NAME [options] -- CMD [ARGS...]
       launch-agent enqueue --queue NAME --spec FILE [options]

Puts a job on a queue and prints its item id on stdout.

Options:
  -q, --queue NAME        the queue (default: the config's first queue, else "default")
      --spec FILE         a launch spec in JSON or YAML (docs/launch-spec.md); the flags below override
                          its fields. Unknown keys are refused (exit 2); W&B's legacy flat
                          resource_args keys are converted with a warning
      --priority P        critical, high, medium or low
      --env NAME=VALUE    environment for the job; repeatable
      --cwd DIR           working directory of the job (local processes)
      --context DIR       the job's code: the agent builds an image from DIR (its Dockerfile, else one
                          generated from requirements.txt / pyproject.toml) and runs the job in it
                          (resource local-container unless the spec says otherwise); embedded queue only
      --name NAME         run name
      --project NAME      W&B project
      --entity NAME       W&B entity
      --template-var NAME=VALUE
                          a value for the queue config's {{NAME}} (W&B's --set-var), checked against
                          the variable's type, bounds and allowed values; repeatable (embedded queue)
      --wait              wait for the job to end; exit 0 if it finished with exit code 0, 1 otherwise
      --dry-run           queue nothing: print what the agent would submit, as "launch-agent check" does
                          (exit 2 with every problem listed)
${CONFIG_FLAGS_HELP}

Everything after "--" is the command, passed as is (no shell).

When the queue has a queue config ("launch-agent queue"), it is merged into the spec: the queue's
resource, its resource_args template filled with the template variables (docs/launch-spec.md).`;

const FLAGS = {
  ...CONFIG_FLAGS,
  ...SPEC_FLAGS,
  wait: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
} as const;

export async function enqueueCommand(argv: string[], io: Io): Promise<number> {
  const { values: v, positionals, rest } = parseCommandArgs('enqueue', argv, FLAGS, true);
  if (v.help) {
    io.stdout.write(ENQUEUE_HELP + '\n');
    return 0;
  }
  if (positionals.length > 0) {
    throw new UsageError(`unexpected argument "${positionals[0]}"; put the command after "--"`, 'enqueue');
  }
  const priority = choiceFlag('enqueue', 'priority', v.priority, PRIORITIES);
  if (v['dry-run']) {
    if (v.wait) throw new UsageError('--wait and --dry-run exclude each other: a dry run queues nothing', 'enqueue');
    return dryRun(io, { ...v, command: rest, json: false });
  }
  const base = v.spec ? await readSpecFile(v.spec, 'enqueue') : undefined;
  const { spec, warnings } = buildSpec(
    base,
    { command: rest, env: v.env ?? [], cwd: v.cwd, context: v.context, name: v.name, project: v.project, entity: v.entity },
    io.cwd,
    'enqueue',
    v.spec,
  );
  for (const w of warnings) io.stderr.write(`launch: spec warning: ${w.path}: ${w.message}\n`);
  const { config, origins } = await loadConfig(io, v.config, { stateDir: v['state-dir'], source: sourceFlag('enqueue', v.source) });
  // Where the agent listens by default: the config's first queue.
  const queueName = v.queue ?? config.queues[0] ?? 'default';
  // The queue's config, checked here so that bad template values or a conflicting spec exit 2 with every issue.
  const prepared = await prepareQueueSpec({ io, config, origins, queue: queueName, spec, base, templateVars: v['template-var'] ?? [], command: 'enqueue' });
  for (const w of prepared.warnings) io.stderr.write(`launch: spec warning: ${w.path}: ${w.message}\n`);
  for (const n of prepared.notes) io.stderr.write(`launch: ${n}\n`);
  if (!prepared.embedded) {
    if (v.context !== undefined) {
      throw new UsageError('--context names a directory on this machine: only the embedded queue takes it (a W&B queue runs jobs elsewhere)', 'enqueue');
    }
    return enqueueToWandbQueue(io, config, origins, { queue: queueName, spec, priority, wait: v.wait === true });
  }
  const selected = await selectSource({ config, origins, env: io.env, homedir: io.homedir, logger: silentLogger, command: 'enqueue' });
  const queue = selected.embedded;
  if (!queue) throw new UsageError('the selected queue source cannot take jobs from this command', 'enqueue');
  try {
    const item = await queue
      .enqueue({ queue: queueName, spec: prepared.input, templateVariables: prepared.templateVariables, priority })
      .catch((error: unknown) => {
        // The queue's config changed since it was read above: the same refusal, exit 2.
        if (LaunchValidationError.isInstance(error)) throw new UsageError(`${error.message}${error.hint ? `\nhint: ${error.hint}` : ''}`, 'enqueue');
        throw error;
      });
    io.stdout.write(item.id + '\n');
    if (!v.wait) return 0;
    const final = await waitForItem(queue, item.id);
    const c = palette(colorEnabled(io.stderr, io.env));
    io.stderr.write(`launch: [${final.id}] ${describeResult(final, c)}\n`);
    return final.state === 'finished' && (final.runState ?? 'finished') === 'finished' && (final.exitCode ?? 0) === 0 ? 0 : 1;
  } finally {
    await queue.close?.();
  }
}

/** `enqueue` on W&B: pushToRunQueueByName to `<entity>/model-registry/<queue>` with the priority (critical 0 … low 3). */
async function enqueueToWandbQueue(
  io: Io,
  config: Awaited<ReturnType<typeof loadConfig>>['config'],
  origins: Record<string, string>,
  request: { queue: string; spec: Record<string, unknown>; priority: (typeof PRIORITIES)[number] | undefined; wait: boolean },
): Promise<number> {
  if (request.wait) throw new UsageError('--wait works with the embedded queue only; follow W&B runs in the W&B UI', 'enqueue');
  const client = (await import('@launch/wandb')).createWandbEnqueueClient({
    ...(config.entity ? { entity: config.entity } : {}),
    ...(config.api_key && origins['api_key'] !== 'env' ? { apiKey: config.api_key } : {}),
    ...(config.base_url ? { baseUrl: config.base_url } : {}),
    env: io.env,
    homedir: io.homedir,
  });
  try {
    const pushed = await client.enqueue({ queue: request.queue, spec: request.spec, ...(request.priority ? { priority: request.priority } : {}) });
    io.stdout.write(pushed.id + '\n');
    return 0;
  } finally {
    await client.close();
  }
}

const ENDED = new Set(['finished', 'failed']);

/** Polls until the item ends; a preempted item is followed to the item it was requeued as. */
export async function waitForItem(queue: EmbeddedQueue, id: string, intervalMs = 250): Promise<ItemRecord> {
  let current = id;
  let orphanChecks = 0;
  for (;;) {
    const item = await queue.get(current);
    if (!item) throw new Error(`item ${current} vanished from the queue`);
    if (ENDED.has(item.state)) {
      if (item.runState !== 'preempted') return item;
      const next = (await queue.list({ queue: item.queue })).find((i) => i.requeuedFrom === item.id);
      if (next) {
        current = next.id;
        orphanChecks = 0;
        continue;
      }
      // The agent requeues right after it records the end; past the resume limit no successor comes.
      if (++orphanChecks > 20) return item;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
