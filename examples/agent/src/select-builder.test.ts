import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LaunchError, parseAgentConfig, silentLogger } from '@launch/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerEngineAddress, pingDockerEngine } from './docker-engine.js';
import { isConfigProblem } from './load-config.js';
import { describeBuildSetup, planBuildSetup, selectBuildSetup } from './select-builder.js';
import { containerRunner } from './select-container-runner.js';

const config = (raw: Record<string, unknown>) => parseAgentConfig(raw, 'test config');
const down = { reachable: false as const, reason: 'ECONNREFUSED' };
const up = { reachable: true as const };

function thrown(fn: () => unknown): LaunchError {
  try {
    fn();
  } catch (error) {
    if (LaunchError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a LaunchError');
}

describe('planBuildSetup', () => {
  it('refuses kaniko at start-up as a config error (exit 2), saying it is not available yet', () => {
    const error = thrown(() => planBuildSetup(config({ builder: { type: 'kaniko', 'build-context-store': 's3://b/p' } }), {}));
    expect(error.code).toBe('config.builder_unavailable');
    expect(error.message).toContain('the kaniko builder is not available yet in this agent');
    expect(isConfigProblem(error)).toBe(true);
  });

  it('names every kaniko-only key the docker builder ignores', () => {
    const plan = planBuildSetup(
      config({ builder: { type: 'docker', 'build-context-store': 's3://b/p', 'secret-name': 's', 'secret-key': 'k', 'build-job-name': 'mine' } }),
      {},
    );
    expect(plan.type).toBe('docker');
    expect(plan.warnings.join('\n')).toMatch(/builder\.build-context-store is used only by kaniko builds/);
    expect(plan.warnings.join('\n')).toMatch(/builder\.secret-name/);
    expect(plan.warnings.join('\n')).toMatch(/builder\.secret-key/);
    expect(plan.warnings.join('\n')).toMatch(/builder\.build-job-name/);
  });

  it('names what the noop builder does not use', () => {
    const plan = planBuildSetup(config({ builder: { type: 'noop', destination: '127.0.0.1:5000/team/app', platform: 'linux/amd64' } }), {});
    expect(plan.warnings).toEqual([
      'builder.destination is not used: the noop builder builds and pushes nothing',
      'builder.platform is not used: the noop builder builds nothing',
    ]);
  });

  it('says the registry block is unused when builder.destination decides, as in W&B', () => {
    const plan = planBuildSetup(config({ builder: { type: 'docker', destination: '127.0.0.1:5000/a' }, registry: { type: 'oci', uri: '127.0.0.1:5000/b' } }), {});
    expect(plan.warnings).toContain('the registry block is not used: builder.destination decides where images are pushed (as in W&B)');
  });

  it('takes the engine from DOCKER_HOST and refuses one it cannot use', () => {
    expect(planBuildSetup(config({}), { DOCKER_HOST: 'unix:///run/x.sock' }).engine).toEqual({ dockerHost: 'unix:///run/x.sock', from: 'DOCKER_HOST' });
    expect(planBuildSetup(config({}), {}).engine.dockerHost).toBe('unix:///var/run/docker.sock');
    const error = thrown(() => dockerEngineAddress({ DOCKER_HOST: 'ssh://me@host' }));
    expect(error.code).toBe('config.docker_host');
    expect(error.message).toContain('ssh://me@host');
    expect(thrown(() => dockerEngineAddress({ DOCKER_HOST: 'tcp://h:2376', DOCKER_TLS_VERIFY: '1' })).message).toContain('without TLS');
  });
});

describe('selectBuildSetup', () => {
  it('without a builder block picks noop when no engine answers, and says why', async () => {
    const s = await selectBuildSetup({ config: config({}), env: {}, logger: silentLogger, probe: down });
    expect(s.builder.name).toBe('noop');
    expect(s.lines[0]).toMatch(/^launch: builder noop \(no builder block, and no Docker engine at unix socket \/var\/run\/docker.sock: ECONNREFUSED\)/);
  });

  it('without a builder block picks docker when the engine answers', async () => {
    const s = await selectBuildSetup({ config: config({}), env: { DOCKER_HOST: 'unix:///tmp/d.sock' }, logger: silentLogger, probe: up });
    expect(s.builder.name).toBe('docker');
    expect(s.lines[0]).toBe('launch: builder docker (no builder block, and the Docker engine at unix socket /tmp/d.sock (DOCKER_HOST) answers)');
  });

  it('keeps builder.type docker when the engine is down, with a warning', async () => {
    const s = await selectBuildSetup({ config: config({ builder: { type: 'docker' } }), env: {}, logger: silentLogger, probe: down });
    expect(s.builder.name).toBe('docker');
    expect(s.lines[1]).toMatch(/warning: the Docker engine at .* does not answer \(ECONNREFUSED\): builds fail until it does/);
  });

  it('gives the docker builder the registry of builder.destination', async () => {
    const s = await selectBuildSetup({ config: config({ builder: { type: 'docker', destination: '127.0.0.1:5000/team/app' } }), env: { HOME: '/nonexistent' }, logger: silentLogger, probe: up });
    expect(s.registry?.name).toBe('oci');
    expect(s.registry?.uri).toBe('127.0.0.1:5000/team/app');
    expect(s.lines).toContain('launch: registry: 127.0.0.1:5000/team/app (OCI registry, from builder.destination); no credentials for this host in the Docker config: anonymous');
  });

  it('uses no registry for noop, even with one configured', async () => {
    const s = await selectBuildSetup({ config: config({ builder: { type: 'noop' }, registry: { type: 'oci', uri: '127.0.0.1:5000/x' } }), env: {}, logger: silentLogger });
    expect(s.registry).toBeUndefined();
    expect(s.lines.some((l) => l.includes('the registry block is not used'))).toBe(true);
  });
});

describe('describeBuildSetup', () => {
  it('says what config check should show, refusals as error lines', () => {
    expect(describeBuildSetup(config({}), {})).toEqual([
      'builder: docker if the Docker engine at unix socket /var/run/docker.sock answers at start-up, else noop (no builder block)',
      'registry: none: built images stay in the Docker engine (no builder.destination or registry.uri)',
    ]);
    expect(describeBuildSetup(config({ builder: { type: 'docker', destination: '127.0.0.1:5000/t/a', platform: 'linux/arm64' } }), { HOME: '/nonexistent' })).toEqual([
      'builder: docker (builder.type) on the Docker engine at unix socket /var/run/docker.sock',
      'platform: linux/arm64 (builder.platform)',
      'registry: 127.0.0.1:5000/t/a (OCI registry, from builder.destination); no credentials for this host in the Docker config: anonymous',
    ]);
    expect(describeBuildSetup(config({ builder: { type: 'kaniko', 'build-context-store': 's3://b/p' } }), {})[0]).toMatch(/^error: builder.type is kaniko: the kaniko builder is not available yet/);
    expect(describeBuildSetup(config({ builder: { type: 'docker', destination: 'myacr.azurecr.io/team' } }), {})[0]).toMatch(
      /^error: builder.destination names myacr.azurecr.io, Azure Container Registry \(acr\): that registry is not available yet/,
    );
  });
});

describe('pingDockerEngine', () => {
  let dir: string;
  let server: Server;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ping-'));
    // A real HTTP server on a unix socket, answering as the engine does.
    server = createServer((req, res) => {
      if (req.url === '/_ping') res.end('OK');
      else {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(join(dir, 'engine.sock'), resolve));
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  it('is reachable when GET /_ping answers 200, and says why not otherwise', async () => {
    expect(await pingDockerEngine({ dockerHost: `unix://${join(dir, 'engine.sock')}`, from: 'DOCKER_HOST' })).toEqual({ reachable: true });
    expect(await pingDockerEngine({ dockerHost: `unix://${join(dir, 'missing.sock')}`, from: 'DOCKER_HOST' })).toEqual({ reachable: false, reason: 'ENOENT' });
  });

  it('decides the container runner from the same answer', async () => {
    const env = { DOCKER_HOST: `unix://${join(dir, 'engine.sock')}` };
    const runner = await containerRunner({ env, stateDir: dir, logger: silentLogger });
    expect(runner?.resources).toEqual(['local-container', 'local']);
    await runner?.close?.();
    expect(await containerRunner({ env: { DOCKER_HOST: `unix://${join(dir, 'missing.sock')}` }, stateDir: dir, logger: silentLogger })).toBeUndefined();
  });
});
