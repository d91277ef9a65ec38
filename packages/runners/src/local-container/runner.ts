import { mkdir, readFile, stat } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import type Docker from 'dockerode';
import { childLogger, LaunchError, type CallContext, type Logger, type Runner, type RunRequest, type SubmittedRun } from '@launch/core';
import { parseRunRequest } from '../run-request.js';
import { logFilePath, openLogStream } from '../local-process/log-file.js';
import { followContainer, type ContainerRun } from './container-run.js';
import { connectEngine, engineError, engineMessage, resolveEndpoint, statusOf, unreachableError, isUnreachable } from './engine.js';
import { containerName, CREATED_BY, LABEL, parseSpecLabel, runLabels } from './labels.js';
import { createContainerOrphanGuard, type ContainerOrphanGuard } from './orphan-guard.js';
import { parseLocalContainerRunnerOptions, type LocalContainerRunnerOptions } from './options.js';
import { parseContainerResourceArgs, parseEnvFile, type ContainerSettings } from './resource-args.js';

/** A runner for jobs that run as containers on a Docker Engine. */
export interface LocalContainerRunner extends Runner {
  /** Finds this agent's containers (by label) after a restart, including those that ended while it was down. */
  adopt(agentName: string, ctx: CallContext): Promise<SubmittedRun[]>;
  /** Cancels every live run (SIGTERM, then SIGKILL after the grace period), waits until they ended, ends the orphan guard. */
  close(): Promise<void>;
  /** Checks that the engine answers; resolves with its address and version, throws a LaunchError naming the address otherwise. */
  verify(): Promise<{ endpoint: string; version: string; apiVersion: string }>;
}

/**
 * Runs jobs as containers on a Docker Engine: W&B's `local-container` resource (also `local`, and the default
 * when a spec names no resource), never on the agent host itself.
 *
 * What W&B's agent does with `docker run --rm -e … [flags from resource_args] --entrypoint <entry_point[0]> image
 * <entry_point[1:]> <args>` this runner does through the engine API (dockerode): `resource_args.local-container`
 * keys are `docker run` flags (see {@link SUPPORTED_RESOURCE_ARGS}); an unknown or refused key fails the run
 * with the key named. Each container is named from its queue item id and labelled with the item, run and
 * agent, so the engine itself refuses a second container for one item (the runner then follows the first)
 * and a restarted agent finds its containers again (`adopt`).
 *
 * @example
 * const runner = createLocalContainerRunner({ logDir: '/var/log/launch', socketPath: '/var/run/docker.sock' });
 * const run = await runner.run({ ...request, image: 'python:3.12-slim' }, { logger });
 * const status = await run.wait(); // { state: 'finished', exitCode: 0, … }
 */
export function createLocalContainerRunner(options: LocalContainerRunnerOptions): LocalContainerRunner {
  const config = parseLocalContainerRunnerOptions(options);
  const endpoint = resolveEndpoint(config.socketPath, config.dockerHost, process.env);
  const baseLogger = childLogger(config.logger, { runner: 'local-container' });
  const guard: ContainerOrphanGuard | undefined = config.orphanGuard ? createContainerOrphanGuard(endpoint, config.killGracePeriodMs) : undefined;
  const live = new Set<ContainerRun>();
  /** Runs of this process by queue item: a redelivered item is followed, not created again. */
  const byItem = new Map<string, Promise<SubmittedRun>>();
  let client: Promise<Docker> | undefined;
  let reachable = false;
  let logDirReady: Promise<void> | undefined;
  let closing = false;

  async function engine(): Promise<Docker> {
    client ??= connectEngine(endpoint);
    const docker = await client;
    if (!reachable) {
      try {
        await docker.ping();
        reachable = true;
      } catch (error) {
        throw isUnreachable(error) ? unreachableError(endpoint, error) : engineError(endpoint, 'answer a ping', error, true);
      }
    }
    return docker;
  }

  function ensureLogDir(): Promise<void> {
    logDirReady ??= mkdir(config.logDir, { recursive: true }).then(
      () => undefined,
      (error: NodeJS.ErrnoException) => {
        logDirReady = undefined;
        throw new LaunchError({
          code: 'run.log_dir',
          stage: 'run',
          retryable: true,
          message: `cannot create the run log directory ${config.logDir}: ${error.code ?? error.message}`,
          hint: 'set the local-container runner `logDir` to a directory the agent may write',
          cause: error,
        });
      },
    );
    return logDirReady;
  }

  async function openLog(itemId: string) {
    await ensureLogDir();
    const path = logFilePath(config.logDir, itemId);
    try {
      return { path, stream: await openLogStream(path) };
    } catch (error) {
      throw new LaunchError({
        code: 'run.log_file',
        stage: 'run',
        retryable: true,
        message: `cannot open the run log ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
        hint: 'set the local-container runner `logDir` to a directory the agent may write',
        cause: error,
      });
    }
  }

  async function readEnvFiles(paths: string[]): Promise<Array<[string, string]>> {
    const out: Array<[string, string]> = [];
    for (const path of paths) {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        throw new LaunchError({
          code: 'run.env_file',
          stage: 'run',
          category: 'InvalidSpec',
          message: `cannot read the env file ${path} named in resource_args (env-file): ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
          hint: 'env-file paths are read on the agent host; create the file or fix the path',
          cause: error,
        });
      }
      out.push(...parseEnvFile(text, path));
    }
    return out;
  }

  function track(run: ContainerRun): void {
    live.add(run);
  }

  function settled(run: ContainerRun): void {
    live.delete(run);
    guard?.untrack(run.containerName);
  }

  /** Pulls `image` anonymously; throws the ImagePullError naming the image. */
  async function pull(docker: Docker, image: string, logger: Logger, platform?: string): Promise<void> {
    logger.info({ image }, 'the image is not in the engine: pulling it');
    try {
      const stream = await docker.pull(image, platform ? { platform } : {});
      await new Promise<void>((resolve, reject) => {
        docker.modem.followProgress(
          stream,
          (error) => (error ? reject(error) : resolve()),
          (event: { error?: string; errorDetail?: { message?: string } }) => {
            if (event?.error) reject(new Error(event.errorDetail?.message ?? event.error));
          },
        );
      });
    } catch (error) {
      if (isUnreachable(error)) throw unreachableError(endpoint, error);
      throw imagePullError(image, `it is not in the engine and pulling it failed: ${engineMessage(error)}`, error);
    }
  }

  function imagePullError(image: string, why: string, cause?: unknown): LaunchError {
    return new LaunchError({
      code: 'run.image_missing',
      stage: 'run',
      category: 'ImagePullError',
      message: `cannot run the image ${image} on the Docker Engine at ${endpoint.describe}: ${why}`,
      hint:
        config.pull === 'never'
          ? `build or load ${image} into that engine first (the runner option pull is "never")`
          : `check the image name and tag, that its registry is reachable from the engine, and that it allows anonymous pulls; or build ${image} on that engine`,
      cause,
    });
  }

  function createBody(request: RunRequest, settings: ContainerSettings, envFiles: Array<[string, string]>, agentName: string, workingDir: string | undefined) {
    const env = new Map<string, string>(Object.entries(request.env));
    // As `docker run`: --env-file first, then -e; a later definition wins over the agent's WANDB_* variables.
    for (const [k, v] of [...envFiles, ...settings.env]) env.set(k, v);
    const [command, ...rest] = request.entryPoint;
    const cmd = [...rest, ...request.args];
    return {
      Image: request.image,
      Env: [...env].map(([k, v]) => `${k}=${v}`),
      // W&B: `--entrypoint <entry_point[0]> image <entry_point[1:]> <args>`; no entry point keeps the image's.
      ...(command !== undefined ? { Entrypoint: [command], Cmd: cmd } : cmd.length > 0 ? { Cmd: cmd } : {}),
      Labels: runLabels(request, agentName, settings.remove, settings.labels),
      Tty: false,
      OpenStdin: false,
      AttachStdin: false,
      ...settings.config,
      ...(settings.config.WorkingDir === undefined && workingDir ? { WorkingDir: workingDir } : {}),
      HostConfig: {
        ...settings.hostConfig,
        // A W&B job's code on a base image (no builder): the run's own copy, mounted where W&B mounts it.
        ...(request.code ? { Binds: [...(settings.hostConfig.Binds ?? []), `${request.code.dir}:${request.code.mountPath}`] } : {}),
      },
    };
  }

  const run = (raw: RunRequest, ctx: CallContext): Promise<SubmittedRun> => {
    const itemId = (raw as { itemId?: unknown })?.itemId;
    if (typeof itemId === 'string' && byItem.has(itemId)) return byItem.get(itemId)!;
    const p = submit(raw, ctx);
    if (typeof itemId === 'string' && itemId !== '') {
      byItem.set(itemId, p);
      p.then(
        (r) => void r.wait().finally(() => byItem.delete(itemId)),
        () => byItem.delete(itemId),
      );
    }
    return p;
  };

  async function submit(raw: RunRequest, ctx: CallContext): Promise<SubmittedRun> {
    const request = parseRunRequest(raw);
    if (closing) {
      throw new LaunchError({ code: 'run.runner_closed', stage: 'run', retryable: true, message: 'the local-container runner is shutting down' });
    }
    if (!request.image) {
      throw new LaunchError({
        code: 'run.no_image',
        stage: 'run',
        category: 'InvalidSpec',
        message: 'the job has no container image to run (resource local-container)',
        hint: 'give the job an image (`docker.docker_image` in the launch spec) or configure a builder that makes one',
      });
    }
    const resource = typeof request.spec.resource === 'string' ? request.spec.resource : 'local-container';
    const settings = parseContainerResourceArgs(request.resourceArgs, resource, config.network);
    if (request.workingDir !== undefined && settings.config.WorkingDir === undefined && !isAbsolute(request.workingDir)) {
      throw new LaunchError({
        code: 'run.working_dir',
        stage: 'run',
        category: 'InvalidSpec',
        message: `the working directory ${JSON.stringify(request.workingDir)} is not an absolute path inside the container`,
        hint: 'set `overrides.working_dir` to an absolute path in the image, or `workdir` in resource_args',
      });
    }
    const agentName = config.agentName ?? request.agentName;
    if (!agentName) {
      throw new LaunchError({
        code: 'run.no_agent_name',
        stage: 'run',
        message: 'the local-container runner needs an agent name for its labels (none in the options or the run request)',
        hint: 'pass agentName to createLocalContainerRunner',
      });
    }
    const envFiles = await readEnvFiles(settings.envFiles);
    const docker = await engine();
    const logger = childLogger(ctx.logger ?? baseLogger, { runner: 'local-container', itemId: request.itemId, runId: request.runId });
    const log = await openLog(request.itemId);
    if (ctx.signal?.aborted) {
      log.stream.destroy();
      throw new LaunchError({ code: 'run.aborted', stage: 'run', retryable: true, message: 'run submission was aborted' });
    }
    const name = containerName(request.itemId);
    const body = createBody(request, settings, envFiles, agentName, request.workingDir);
    // Tracked before create: an agent killed between create and start still takes the container with it.
    guard?.track(name, request.runId);

    let target: { id: string; needsStart: boolean; remove: boolean };
    try {
      target = await createOrFind(docker, name, { ...request, image: request.image }, body, settings, logger);
    } catch (error) {
      guard?.untrack(name);
      log.stream.destroy();
      throw error;
    }
    const { id, needsStart, remove } = target;
    const containerRun = followContainer({
      docker,
      endpoint,
      name,
      id,
      image: request.image,
      runId: request.runId,
      itemId: request.itemId,
      queue: request.queue,
      spec: request.spec,
      remove,
      needsStart,
      logPath: log.path,
      logStream: log.stream,
      killGracePeriodMs: config.killGracePeriodMs,
      maxLogTailBytes: config.maxLogTailBytes,
      logTailLines: config.logTailLines,
      logger,
      onSettled: settled,
    });
    track(containerRun);
    await containerRun.started;
    return containerRun;
  }

  /**
   * Creates the item's container, or finds the one the engine already has under its name (a redelivered item,
   * another agent, a crash between create and ack): the engine's 409 on the deterministic name is what keeps
   * one item from ever getting two containers. Pulls a missing image once when the pull policy allows.
   */
  async function createOrFind(
    docker: Docker,
    name: string,
    request: RunRequest & { image: string },
    body: object,
    settings: ContainerSettings,
    logger: Logger,
  ): Promise<{ id: string; needsStart: boolean; remove: boolean }> {
    const query = { name, ...(settings.platform ? { platform: settings.platform } : {}) };
    const deadline = Date.now() + 30_000;
    let pulled = false;
    for (;;) {
      try {
        if (request.attachOnly) throw Object.assign(new Error('attach only: never create'), { statusCode: 409 });
        // `_query`/`_body` keep the body (with the job's environment) out of the request URL.
        const created = await docker.createContainer({ _query: query, _body: body } as unknown as Docker.ContainerCreateOptions);
        logger.info({ container: name, id: created.id.slice(0, 12), image: request.image }, 'container created');
        return { id: created.id, needsStart: true, remove: settings.remove };
      } catch (error) {
        const status = statusOf(error);
        if (status === 404 && /image/i.test(engineMessage(error))) {
          if (config.pull === 'never') throw imagePullError(request.image, 'the engine does not have it', error);
          if (pulled) throw imagePullError(request.image, `the engine still lacks it after a pull: ${engineMessage(error)}`, error);
          await pull(docker, request.image, logger, settings.platform);
          pulled = true;
          continue;
        }
        if (status !== 409) throw engineError(endpoint, `create the container ${name}`, error);
      }
      let existing: Docker.ContainerInspectInfo | undefined;
      try {
        existing = await docker.getContainer(name).inspect();
      } catch (error) {
        // 404: the other create is still being registered, or it failed and freed the name: try again.
        if (statusOf(error) !== 404) throw engineError(endpoint, `inspect the existing container ${name}`, error, true);
      }
      if (!existing && request.attachOnly) {
        throw new LaunchError({
          code: 'run.outcome_lost',
          stage: 'run',
          message: `queue item ${request.itemId} was started by an earlier claim, but the Docker Engine at ${endpoint.describe} has no container ${name} for it any more`,
          hint: 'the container was removed (docker rm, a prune) before its outcome was recorded; enqueue the job again',
        });
      }
      if (existing && existing.State?.Status !== 'removing') {
        const labels = existing.Config?.Labels ?? {};
        if (labels[LABEL.itemId] !== request.itemId) {
          throw new LaunchError({
            code: 'run.container_name_taken',
            stage: 'run',
            message: `a container named ${name} exists on the Docker Engine at ${endpoint.describe}, but it does not belong to queue item ${request.itemId}`,
            hint: `remove or rename that container (docker rm ${name})`,
          });
        }
        guard?.track(name, labels[LABEL.runId] ?? request.runId);
        logger.info({ container: name, state: existing.State?.Status }, 'the queue item already has a container: following it instead of creating another');
        return { id: existing.Id, needsStart: existing.State?.Status === 'created', remove: labels[LABEL.remove] !== 'false' };
      }
      if (Date.now() > deadline) {
        throw new LaunchError({
          code: 'run.container_name_busy',
          stage: 'run',
          retryable: true,
          message: `the Docker Engine at ${endpoint.describe} kept refusing the name ${name} for 30 s while no such container could be inspected`,
          hint: 'check the engine (docker ps -a); the name may be held by a container being removed',
        });
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  return {
    specificationVersion: 'v1',
    name: 'local-container',
    warningStage: 'local-container',
    resources: ['local-container', 'local'],
    capabilities: { adopt: true, remote: false, needsImage: true, mountsCode: true },
    run,

    async adopt(agentName, ctx) {
      const name = config.agentName ?? agentName;
      const logger = ctx.logger ?? baseLogger;
      const docker = await engine();
      let list: Docker.ContainerInfo[];
      try {
        list = await docker.listContainers({ all: true, filters: { label: [`${LABEL.agent}=${name}`, `${LABEL.createdBy}=${CREATED_BY}`] } });
      } catch (error) {
        throw engineError(endpoint, 'list containers', error, true);
      }
      const following = new Set([...live].map((r) => r.containerName));
      const out: SubmittedRun[] = [];
      for (const c of list) {
        const labels = c.Labels ?? {};
        const itemId = labels[LABEL.itemId];
        if (!itemId) continue;
        const cname = containerName(itemId);
        // A renamed container's outcome was reported already; one being removed is gone.
        if (!c.Names?.includes(`/${cname}`) || c.State === 'removing' || following.has(cname)) continue;
        const runId = labels[LABEL.runId] ?? '';
        const log = await openLog(itemId);
        const since = await stat(log.path).then(
          (s) => (s.size > 0 ? s.mtimeMs / 1000 : undefined),
          () => undefined,
        );
        guard?.track(cname, runId);
        const adopted = followContainer({
          docker,
          endpoint,
          name: cname,
          id: c.Id,
          image: c.Image,
          runId,
          itemId,
          queue: labels[LABEL.queue],
          spec: parseSpecLabel(labels[LABEL.spec]),
          remove: labels[LABEL.remove] !== 'false',
          needsStart: c.State === 'created',
          logsSince: since,
          logPath: log.path,
          logStream: log.stream,
          killGracePeriodMs: config.killGracePeriodMs,
          maxLogTailBytes: config.maxLogTailBytes,
          logTailLines: config.logTailLines,
          logger: childLogger(logger, { runner: 'local-container', itemId, runId, adopted: true }),
          onSettled: settled,
        });
        track(adopted);
        byItem.set(itemId, Promise.resolve(adopted));
        void adopted.wait().finally(() => byItem.delete(itemId));
        logger.info({ container: cname, state: c.State }, 'adopted a container started before a restart');
        out.push(adopted);
      }
      return out;
    },

    async verify() {
      const docker = await engine();
      try {
        const v = await docker.version();
        return { endpoint: endpoint.describe, version: v.Version, apiVersion: v.ApiVersion };
      } catch (error) {
        throw engineError(endpoint, 'report its version', error, true);
      }
    },

    async close() {
      closing = true;
      const runs = [...live];
      await Promise.all(runs.map((r) => r.cancel()));
      // An engine that went away never reports the end: stop following after the grace period plus a margin.
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, config.killGracePeriodMs + 15_000)));
      await Promise.race([Promise.all(runs.map((r) => r.wait())), bound]);
      clearTimeout(timer);
      for (const r of live) r.detach();
      await Promise.all(runs.map((r) => r.wait()));
      guard?.close();
    },
  };
}
