import type Docker from 'dockerode';
import { LaunchError } from '@launch/core';

/** Where the Docker Engine listens. */
export type EngineEndpoint = { kind: 'unix'; socketPath: string; describe: string } | { kind: 'tcp'; host: string; port: number; describe: string };

/**
 * Resolves the engine address: `socketPath`, else `dockerHost`, else `$DOCKER_HOST`, else `/var/run/docker.sock`.
 * Throws a LaunchError (stage `agent`) for an address this runner cannot use.
 */
export function resolveEndpoint(socketPath: string | undefined, dockerHost: string | undefined, env: NodeJS.ProcessEnv): EngineEndpoint {
  if (socketPath) return { kind: 'unix', socketPath, describe: `unix socket ${socketPath}` };
  const from = dockerHost ? 'dockerHost' : 'DOCKER_HOST';
  const host = dockerHost ?? env.DOCKER_HOST;
  if (!host) return { kind: 'unix', socketPath: '/var/run/docker.sock', describe: 'unix socket /var/run/docker.sock' };
  const bad = (why: string) =>
    new LaunchError({
      code: 'runner.invalid_docker_host',
      stage: 'agent',
      message: `${from} ${JSON.stringify(host)} ${why}`,
      hint: 'use unix:///path/to/docker.sock or tcp://host:port, or set the runner option socketPath',
    });
  if (host.startsWith('unix://')) {
    const path = host.slice('unix://'.length);
    if (!path.startsWith('/')) throw bad('has no absolute socket path');
    return { kind: 'unix', socketPath: path, describe: `unix socket ${path}` };
  }
  if (host.startsWith('tcp://')) {
    if (env.DOCKER_TLS_VERIFY === '1' || env.DOCKER_CERT_PATH) throw bad('needs TLS (DOCKER_TLS_VERIFY/DOCKER_CERT_PATH), which this runner does not support');
    let url: URL;
    try {
      url = new URL(host.replace(/^tcp:/, 'http:'));
    } catch {
      throw bad('is not a valid tcp://host:port address');
    }
    const port = Number(url.port || 2375);
    if (port === 2376) throw bad('is the TLS port 2376, and this runner does not support TLS');
    return { kind: 'tcp', host: url.hostname, port, describe: `tcp://${url.hostname}:${port}` };
  }
  throw bad('is not a unix:// or tcp:// address');
}

/** Loads dockerode on first use, so importing the runner stays cheap. */
export async function connectEngine(endpoint: EngineEndpoint): Promise<Docker> {
  const mod = (await import('dockerode')) as unknown as { default?: typeof Docker } & typeof Docker;
  const DockerClass = (mod.default ?? mod) as typeof Docker;
  return endpoint.kind === 'unix'
    ? new DockerClass({ socketPath: endpoint.socketPath })
    : new DockerClass({ host: endpoint.host, port: endpoint.port, protocol: 'http' });
}

/** An error from dockerode: an HTTP status from the engine, or a socket error. */
export interface EngineFailure {
  statusCode?: number;
  code?: string;
  message: string;
  json?: { message?: string } | null;
}

export function statusOf(error: unknown): number | undefined {
  return typeof (error as EngineFailure)?.statusCode === 'number' ? (error as EngineFailure).statusCode : undefined;
}

/** The engine's own message (`json.message`), else the error's. */
export function engineMessage(error: unknown): string {
  const e = error as EngineFailure;
  const fromJson = e?.json && typeof e.json === 'object' ? e.json.message : undefined;
  return String(fromJson ?? e?.message ?? error).trim();
}

const UNREACHABLE = new Set(['ENOENT', 'ECONNREFUSED', 'EACCES', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND']);

export function isUnreachable(error: unknown): boolean {
  return UNREACHABLE.has(String((error as EngineFailure)?.code));
}

/** The LaunchError for an engine that does not answer. */
export function unreachableError(endpoint: EngineEndpoint, error: unknown): LaunchError {
  const code = String((error as EngineFailure)?.code ?? '');
  const why =
    code === 'ENOENT'
      ? 'the socket does not exist'
      : code === 'EACCES'
        ? 'permission denied on the socket'
        : code === 'ECONNREFUSED'
          ? 'connection refused'
          : engineMessage(error);
  return new LaunchError({
    code: 'run.engine_unreachable',
    stage: 'run',
    retryable: true,
    message: `the Docker Engine at ${endpoint.describe} is not reachable: ${why}`,
    hint:
      code === 'EACCES'
        ? "give the agent's user access to the socket (e.g. the docker group)"
        : 'start dockerd, or point the local-container runner at the engine (socketPath, dockerHost or DOCKER_HOST)',
    cause: error,
  });
}

/** Any other engine failure during `what` (an API call), naming the engine. */
export function engineError(endpoint: EngineEndpoint, what: string, error: unknown, retryable = false): LaunchError {
  if (isUnreachable(error)) return unreachableError(endpoint, error);
  const status = statusOf(error);
  return new LaunchError({
    code: 'run.engine_error',
    stage: 'run',
    retryable: retryable || (status !== undefined && status >= 500),
    message: `the Docker Engine at ${endpoint.describe} refused to ${what}${status ? ` (HTTP ${status})` : ''}: ${engineMessage(error)}`,
    cause: error,
  });
}
