import { CONFIG_FLAGS, CONFIG_FLAGS_HELP, sourceFlag } from '../flags.js';
import type { Io } from '../io.js';
import { loadConfig } from '../load-config.js';
import { createSession } from '../session.js';
import { UsageError, choiceFlag, intFlag, parseCommandArgs } from '../usage.js';

export const RUN_HELP = `Usage: launch-agent [run] [options]

Runs the agent: takes jobs off the queues and runs them until stopped (Ctrl-C or SIGTERM stops
cleanly and reports KILLED; a second signal exits at once).

Options:
  -q, --queue NAME        a queue to serve; repeat for several (replaces the config's queues;
                          the embedded queue serves "default" when none is configured)
  -e, --entity NAME       W&B entity
  -j, --max-jobs N        concurrent jobs; -1 for no limit (default 1)
  -v                      more output; repeat (-vv) for debug logs. -v also shows the jobs' output
  -l, --log-file FILE     write the agent's internal log to FILE ("-" for stdout)
      --log-format FMT    human (default) or json: one JSON object per line on stderr
      --exit-when-idle    exit 0 once the queue is empty and no job runs (alias: --once)
      --health-port N     serve /healthz, /readyz and /metrics on port N (default $LAUNCH_HEALTH_PORT; off)
      --health-host ADDR  address for them (default $LAUNCH_HEALTH_HOST, else 127.0.0.1)
      --process-metrics   also export Node's process metrics on /metrics
${CONFIG_FLAGS_HELP}

Exit status: 0 after a clean stop, 1 on a failure at run time, 2 on bad usage or config.`;

const FLAGS = {
  ...CONFIG_FLAGS,
  queue: { type: 'string', short: 'q', multiple: true },
  entity: { type: 'string', short: 'e' },
  'max-jobs': { type: 'string', short: 'j' },
  verbose: { type: 'boolean', short: 'v', multiple: true },
  'log-file': { type: 'string', short: 'l' },
  'log-format': { type: 'string' },
  'exit-when-idle': { type: 'boolean' },
  once: { type: 'boolean' },
  'health-port': { type: 'string' },
  'health-host': { type: 'string' },
  'process-metrics': { type: 'boolean' },
} as const;

export interface RunFlags {
  help: boolean;
  configPath?: string;
  queues?: string[];
  entity?: string;
  maxJobs?: number;
  verbosity?: number;
  logFile?: string;
  logFormat: 'human' | 'json';
  stateDir?: string;
  source?: 'wandb' | 'embedded';
  exitWhenIdle: boolean;
  healthPort?: string;
  healthHost?: string;
  processMetrics: boolean;
}

/** Parses `launch-agent run` flags (exported for unit tests). */
export function parseRunFlags(argv: string[]): RunFlags {
  const { values: v } = parseCommandArgs('run', argv, FLAGS);
  const count = v.verbose?.length;
  return {
    help: v.help === true,
    configPath: v.config,
    queues: v.queue,
    entity: v.entity,
    maxJobs: intFlag('run', 'max-jobs', v['max-jobs']),
    verbosity: count && count > 0 ? count : undefined,
    logFile: v['log-file'],
    logFormat: choiceFlag('run', 'log-format', v['log-format'], ['human', 'json'] as const) ?? 'human',
    stateDir: v['state-dir'],
    source: sourceFlag('run', v.source),
    exitWhenIdle: v['exit-when-idle'] === true || v.once === true,
    healthPort: v['health-port'],
    healthHost: v['health-host'],
    processMetrics: v['process-metrics'] === true,
  };
}

export async function runCommand(argv: string[], io: Io): Promise<number> {
  const flags = parseRunFlags(argv);
  if (flags.help) {
    io.stdout.write(RUN_HELP + '\n');
    return 0;
  }
  const healthPort = intFlag('run', 'health-port', flags.healthPort ?? io.env.LAUNCH_HEALTH_PORT);
  if (healthPort !== undefined && (healthPort < 1 || healthPort > 65535)) {
    throw new UsageError(`--health-port expects a port from 1 to 65535, got ${healthPort}`, 'run');
  }
  const { config, origins, warnings } = await loadConfig(io, flags.configPath, {
    queues: flags.queues,
    entity: flags.entity,
    maxJobs: flags.maxJobs,
    verbosity: flags.verbosity,
    logFile: flags.logFile,
    stateDir: flags.stateDir,
    source: flags.source,
  });
  const session = await createSession({
    io,
    config,
    origins,
    command: 'run',
    format: flags.logFormat,
    logFile: config.log_file,
    showLogs: false,
    exitWhenIdle: flags.exitWhenIdle,
    health:
      healthPort === undefined ? undefined : { port: healthPort, host: flags.healthHost ?? io.env.LAUNCH_HEALTH_HOST, processMetrics: flags.processMetrics },
  });
  const where = session.selected.kind === 'embedded' ? ` (state in ${session.selected.stateDir})` : '';
  session.out.write(
    flags.logFormat === 'json'
      ? JSON.stringify({ time: new Date().toISOString(), event: 'agent:starting', source: session.selected.kind, queues: session.queues })
      : `launch: serving ${session.queues.join(', ')} from the ${session.selected.kind} queue${where}`,
  );
  for (const warning of warnings) session.say('warn', `launch: config warning: ${warning}`);
  return session.run();
}
