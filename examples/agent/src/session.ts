import { join } from 'node:path';
import { createAgent, type Agent, type AgentConfig, type AgentStopped, type EmbeddedQueue, type Logger, type Redactor } from '@launch/core';
import { agentOptionsFromConfig, registrationConfig } from './agent-options.js';
import { watchIdle } from './idle.js';
import type { Io } from './io.js';
import { colorEnabled, palette } from './output/color.js';
import { createCliLogger, levelForVerbosity, teeLogger, type LogFormat } from './output/logger.js';
import { attachReporter, type Reporter } from './output/reporter.js';
import { startStatusLines, statusIntervalMs } from './output/status-line.js';
import { fileSink, streamSink, teeSink, type LineSink } from './output/sink.js';
import { isConfigProblem } from './load-config.js';
import { cliRedactor } from './redaction.js';
import { selectBuildSetup } from './select-builder.js';
import { selectRunners } from './select-runners.js';
import { selectJobResolver } from './select-job-resolver.js';
import { selectSource, type SelectedSource } from './select-source.js';
import type { HealthServer } from './health/index.js';
import { EXIT_FAILURE, EXIT_OK, UsageError } from './usage.js';
import { VERSION } from './version.js';

export interface SessionOptions {
  io: Io;
  config: AgentConfig;
  /** Where each config value came from; decides the queue source when `source` was not written. */
  origins?: Record<string, string>;
  command: string;
  format: LogFormat;
  logFile?: string;
  /** Echo the jobs' output lines (`-v`, the demo). */
  showLogs: boolean;
  /** Stop once no job runs and the queue is empty. */
  exitWhenIdle: boolean;
  /** Serve /healthz, /readyz and /metrics (off when undefined). */
  health?: { port: number; host?: string; processMetrics?: boolean };
}

export interface Session {
  agent: Agent;
  selected: SelectedSource;
  queues: string[];
  redactor: Redactor;
  logger: Logger;
  reporter: Reporter;
  /** Progress output (stderr), redacted. */
  out: LineSink;
  /**
   * Writes one of the binary's own notes (`launch: …`) to `out`: as written in the human format, as
   * `{"level","time","msg"}` with `--log-format json`, so stderr stays one JSON object per line.
   */
  say(level: 'info' | 'warn' | 'error', line: string): void;
  /** Runs the agent until it stops; resolves with the exit code. */
  run(): Promise<number>;
  /** The health server, when `health` was given. */
  health?: HealthServer;
}

/** Everything `launch-agent run` assembles from a validated config: source, runner, builder, agent, output. */
export async function createSession(options: SessionOptions): Promise<Session> {
  const { io, config } = options;
  const redactor = cliRedactor(io.env, config.api_key);
  const out = streamSink(io.stderr, redactor);
  const say = (level: 'info' | 'warn' | 'error', line: string) =>
    out.write(options.format === 'json' ? JSON.stringify({ level, time: new Date().toISOString(), msg: line.replace(/^launch: /, '') }) : line);
  const logFile = options.logFile ? fileSink(options.logFile, redactor, io.stdout) : undefined;
  const verbosity = config.verbosity ?? 0;
  const logger = teeLogger(
    createCliLogger({ sink: out, level: levelForVerbosity(verbosity), format: options.format, redactor }),
    ...(logFile ? [createCliLogger({ sink: logFile, level: 'debug', format: options.format, redactor })] : []),
  );

  const selected = await selectSource({ config, origins: options.origins, env: io.env, homedir: io.homedir, logger, command: options.command });
  const queues = config.queues && config.queues.length > 0 ? [...config.queues] : selected.kind === 'embedded' ? ['default'] : [];
  if (queues.length === 0) throw new UsageError('no queue to serve: name one with --queue or `queues:` in the config', options.command);

  const killGracePeriodMs = config.kill_grace_period === undefined ? undefined : config.kill_grace_period * 1000;
  // Before the runners: the engine's answer to one ping decides the builder and the local-container runner.
  const build = await selectBuildSetup({ config, env: io.env, logger });
  for (const line of build.lines) say('info', line);
  const runners = await selectRunners({
    config,
    env: io.env,
    homedir: io.homedir,
    stateDir: selected.stateDir,
    killGracePeriodMs,
    logger,
    dockerProbe: build.probe,
  });
  const jobResolver = await selectJobResolver({
    kind: selected.kind,
    config,
    origins: options.origins,
    env: io.env,
    homedir: io.homedir,
    stateDir: selected.stateDir,
    logger,
    redactor,
  });
  // prom-client (about 13 MiB) loads only when health and metrics are on.
  const healthModule = options.health ? await import('./health/index.js') : undefined;
  const metrics = options.health ? healthModule!.createLaunchMetrics({ processMetrics: options.health.processMetrics }) : undefined;
  const agentOptions = agentOptionsFromConfig(config);
  const agent = createAgent({
    ...agentOptions,
    source: metrics ? metrics.instrumentSource(selected.source) : selected.source,
    queues,
    runners,
    builder: build.builder,
    jobResolver,
    env: io.env,
    version: io.env.WANDB_AGENT_VERSION ?? `launch-agent@${VERSION}`,
    config: registrationConfig(config),
    filesDir: join(selected.stateDir, 'files'),
    logger,
    // The agent registers each job's secrets here from its claim until it ends, so every line this
    // binary prints hides them while the job runs, and the set does not grow with every job ever run.
    redactor,
  });
  const colors = palette(options.format === 'human' && colorEnabled(io.stderr, io.env));
  const reporter = attachReporter(agent, {
    sink: teeSink(out, logFile),
    format: options.format,
    colors,
    showLogs: options.showLogs || verbosity >= 1,
  });
  // Listening before the agent starts: /readyz says 503 while it registers, and every job is counted.
  const health = options.health
    ? await healthModule!.startHealthServer({
        port: options.health.port,
        host: options.health.host,
        agent,
        metrics,
        runners,
        pollIntervalMs: agentOptions.pollIntervalMs ?? selected.source.capabilities.pollIntervalMs,
        // /readyz waits for the builder to prove it can work (its context store, cluster or engine).
        checks: build.builder?.verify
          ? [{ name: `builder ${build.builder.name}`, run: (signal: AbortSignal) => build.builder!.verify!({ logger, signal }) }]
          : [],
        logger,
      })
    : undefined;
  if (health) say('info', `launch: health and metrics on ${health.url} (/healthz, /readyz, /metrics)`);

  const run = async (): Promise<number> => {
    let signals = 0;
    let exitCode = EXIT_OK;
    agent.on('agent:stopped', (stop) => {
      exitCode = exitCodeForStop(stop);
    });
    const offSignal = io.onSignal((signal) => {
      signals += 1;
      if (signals > 1) {
        say('warn', `launch: second ${signal}: exiting now; local jobs are killed without a grace period`);
        process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
      }
      say('info', `launch: ${signal} received: stopping (send it again to exit at once)`);
      void agent.stop(`signal ${signal}`);
    });
    let stopIdle: (() => void) | undefined;
    // A started agent holds the process open itself; this covers registration and a start that hangs too.
    const keepAlive = setInterval(() => {}, 1 << 30);
    const stopStatusLines = startStatusLines(agent, { sink: out, queues, format: options.format, intervalMs: statusIntervalMs(verbosity) });
    try {
      if (options.exitWhenIdle) {
        stopIdle = watchIdle({
          agent,
          queueEmpty: selected.embedded ? embeddedQueueEmpty(selected.embedded, queues) : undefined,
          onIdle: () => void agent.stop('idle: the queue is empty and no job runs'),
        });
      }
      // A signal during a start that hangs (a slow API, a stuck file system) must still end the process.
      await Promise.race([agent.start(), agent.stopped]);
      await agent.stopped;
      return exitCode;
    } catch (error) {
      await agent.stop('the agent failed to start').catch(() => {});
      // Refused at registration (bad credentials, a missing queue): the user's config, exit 2.
      if (isConfigProblem(error)) throw error;
      say('error', `launch: agent failed: ${error instanceof Error ? error.message : String(error)}`);
      return EXIT_FAILURE;
    } finally {
      clearInterval(keepAlive);
      stopStatusLines();
      stopIdle?.();
      offSignal();
      reporter.flush();
      reporter.detach();
      await health?.close();
      await selected.source.close?.().catch(() => {});
      await jobResolver?.close?.().catch(() => {});
      await logFile?.close();
    }
  };

  return { agent, selected, queues, redactor, logger, reporter, out, say, run, health };
}

/**
 * The exit code of a run the agent ended on its own terms, from the stop's typed cause (never its free-text
 * reason): a signal, the idle check or the queue's stop request is a clean stop (0); an agent that could not
 * go on is a failure (1).
 */
export function exitCodeForStop(stop: Pick<AgentStopped, 'cause'>): number {
  return stop.cause === 'fatal' ? EXIT_FAILURE : EXIT_OK;
}

const BUSY = new Set(['queued', 'claimed', 'acked']);

/**
 * The embedded queue is empty for us when none of our queues holds a queued, claimed or
 * acknowledged item: an item claimed by an agent that died comes back once its lease expires.
 */
function embeddedQueueEmpty(embedded: EmbeddedQueue, queues: string[]): () => Promise<boolean> {
  return async () => {
    const items = await embedded.list();
    return !items.some((i) => queues.includes(i.queue) && BUSY.has(i.state));
  };
}
