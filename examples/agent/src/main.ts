import { Redactor } from '@launch/core';
import { checkCommand } from './commands/check.js';
import { configCommand } from './commands/config.js';
import { demoCommand } from './commands/demo.js';
import { enqueueCommand } from './commands/enqueue.js';
import { fetchCodeCommand } from './commands/fetch-code.js';
import { queueCommand } from './commands/queue.js';
import { runCommand } from './commands/run.js';
import { statusCommand } from './commands/status.js';
import type { Io } from './io.js';
import { asConfigError, ConfigError } from './load-config.js';
import { cliRedactor } from './redaction.js';
import { EXIT_FAILURE, EXIT_USAGE, UsageError } from './usage.js';
import { VERSION } from './version.js';

export const MAIN_HELP = `Usage: launch-agent [command] [options]

Takes jobs off queues (the embedded queue, or W&B Launch queues) and runs them.

Commands:
  run                 run the agent (the default command)
  enqueue             put a job on a queue
  status              show the queue's items and agents
  queue               queue configs of the embedded queue: create, show, edit, list, delete
  config check        validate the agent config and show where each value came from
  config schema       print the config's JSON Schema
  check               dry run: print what the agent would submit for a job (exit 2 on problems)
  demo                run three demo jobs on a temporary queue and show the result
  fetch-code          fetch a W&B job's code into a directory (the Kubernetes code init container)

Run "launch-agent <command> --help" for a command's options.
Exit status: 0 success, 1 failure at run time, 2 bad usage or config.`;

const COMMANDS: Record<string, (argv: string[], io: Io) => Promise<number>> = {
  check: checkCommand,
  run: runCommand,
  enqueue: enqueueCommand,
  status: statusCommand,
  queue: queueCommand,
  config: configCommand,
  demo: demoCommand,
  'fetch-code': fetchCodeCommand,
};

/** Runs one command line; resolves with the exit code. Never throws. */
export async function main(argv: string[], io: Io): Promise<number> {
  const [first, ...rest] = argv;
  let command = 'run';
  let args = argv;
  if (first === '--help' || first === '-h' || first === 'help') {
    io.stdout.write(MAIN_HELP + '\n');
    return 0;
  }
  if (first === '--version' || first === '-V') {
    io.stdout.write(`launch-agent ${VERSION}\n`);
    return 0;
  }
  if (first !== undefined && !first.startsWith('-')) {
    if (!(first in COMMANDS)) {
      io.stderr.write(`launch-agent: unknown command "${first}"\nRun "launch-agent --help" for the commands.\n`);
      return EXIT_USAGE;
    }
    command = first;
    args = rest;
  }
  // Errors can quote input: scrub the API key and secret-looking variables from them too.
  const redactor: Redactor = cliRedactor(io.env, io.env.WANDB_API_KEY);
  try {
    return await COMMANDS[command]!(args, io);
  } catch (thrown) {
    const error = asConfigError(thrown);
    if (error instanceof UsageError) {
      const name = error.command === 'run' ? 'launch-agent' : `launch-agent ${error.command}`;
      io.stderr.write(redactor.redact(`${name}: ${error.message}\nRun "${name} --help" for usage.`) + '\n');
      return EXIT_USAGE;
    }
    if (error instanceof ConfigError) {
      io.stderr.write(redactor.redact(`launch-agent: ${error.message}`) + '\n');
      return EXIT_USAGE;
    }
    io.stderr.write(redactor.redact(`launch-agent: error: ${error instanceof Error ? error.message : String(error)}`) + '\n');
    return EXIT_FAILURE;
  }
}
