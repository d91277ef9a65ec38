import { request } from 'node:http';
import { LaunchError } from '@launch/core';

/** Where the Docker Engine is, as the docker CLI finds it: `$DOCKER_HOST`, else the default socket. */
export interface DockerEngineAddress {
  /** `unix:///path` or `tcp://host:port`, as the docker builder and the container runner take it. */
  dockerHost: string;
  /** Where the address came from, for start-up lines. */
  from: 'DOCKER_HOST' | 'default';
}

export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';
/** How long start-up waits for `GET /_ping` before deciding there is no engine. */
export const DOCKER_PING_TIMEOUT_MS = 3_000;

const UNIX = /^unix:\/\/(\/.+)$/;
const TCP = /^tcp:\/\/([^/\s:]+|\[[0-9a-fA-F:]+\]):(\d{1,5})\/?$/;

/**
 * The engine address from the environment. A `DOCKER_HOST` this agent cannot use (TLS, ssh://, a
 * typo) is a config error (exit 2) naming the variable, rather than a silent fall-back to the default socket.
 */
export function dockerEngineAddress(env: Record<string, string | undefined>): DockerEngineAddress {
  const value = env.DOCKER_HOST;
  if (value === undefined || value === '') return { dockerHost: DEFAULT_DOCKER_HOST, from: 'default' };
  if (!UNIX.test(value) && !TCP.test(value)) {
    throw new LaunchError({
      code: 'config.docker_host',
      message: `DOCKER_HOST is invalid: expected unix:///path/to/docker.sock or tcp://host:port, found ${JSON.stringify(value.slice(0, 200))}`,
      hint: "set DOCKER_HOST to the engine's unix socket or plain-TCP address, or unset it to use /var/run/docker.sock",
    });
  }
  if (value.startsWith('tcp://') && env.DOCKER_TLS_VERIFY) {
    throw new LaunchError({
      code: 'config.docker_host',
      message: `DOCKER_TLS_VERIFY is set for DOCKER_HOST ${value}, but this agent talks to the Docker Engine without TLS`,
      hint: "use the engine's unix socket (DOCKER_HOST=unix:///var/run/docker.sock), or unset DOCKER_TLS_VERIFY for a plain-TCP engine",
    });
  }
  return { dockerHost: value, from: 'DOCKER_HOST' };
}

/** `unix socket /var/run/docker.sock` or `tcp://host:port`, for messages. */
export function describeEngine(address: DockerEngineAddress): string {
  const unix = UNIX.exec(address.dockerHost);
  const where = unix ? `unix socket ${unix[1]}` : address.dockerHost;
  return address.from === 'DOCKER_HOST' ? `${where} (DOCKER_HOST)` : where;
}

export type EngineProbe = { reachable: true } | { reachable: false; reason: string };

/**
 * Asks the engine `GET /_ping` with a deadline: the same check W&B's `docker --version` stands for,
 * but one that also proves the daemon answers. Never throws.
 */
export function pingDockerEngine(address: DockerEngineAddress, timeoutMs = DOCKER_PING_TIMEOUT_MS): Promise<EngineProbe> {
  const unix = UNIX.exec(address.dockerHost);
  const tcp = TCP.exec(address.dockerHost);
  const target = unix ? { socketPath: unix[1] } : { host: tcp![1]!.replace(/^\[|\]$/g, ''), port: Number(tcp![2]) };
  return new Promise((resolve) => {
    let settled = false;
    const done = (probe: EngineProbe) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(probe);
    };
    const req = request({ ...target, path: '/_ping', method: 'GET' }, (res) => {
      res.resume();
      if (res.statusCode === 200) done({ reachable: true });
      else done({ reachable: false, reason: `GET /_ping answered HTTP ${res.statusCode}` });
    });
    const timer = setTimeout(() => {
      done({ reachable: false, reason: `no answer to GET /_ping within ${timeoutMs} ms` });
      req.destroy();
    }, timeoutMs);
    req.on('error', (error: NodeJS.ErrnoException) => done({ reachable: false, reason: error.code ?? error.message }));
    req.end();
  });
}
