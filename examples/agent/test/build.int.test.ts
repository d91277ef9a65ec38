import { readlinkSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dockerService, registryServices, serviceAvailable } from '@launch/testkit';
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cli, readText, sandbox, status } from './helpers.js';

/**
 * The binary with the Docker builder, the registries and the local-container runner wired in, on the
 * test kit's real dockerd (private socket, no bridge) and Distribution registries.
 *
 * Not covered here because the agent cannot do it yet: building a job's code. The core agent passes
 * no `contextDir` to the builder (packages/core/src/agent/job.ts, `resolveImage`) and no queue source
 * or `enqueue` flag supplies one, so a job without an image fails with `build.no_context`; the test
 * below pins that failure so it cannot turn into a silent fall-back.
 */
const docker = dockerService();
const registries = registryServices();

describe.runIf(serviceAvailable('the test Docker engine and registries', !!docker && !!registries))('launch-agent with a Docker engine', () => {
  beforeAll(() => assertBuilt());

  async function box(extra: Record<string, string> = {}) {
    return sandbox({ DOCKER_HOST: `unix://${docker!.socketPath}`, ...extra });
  }

  async function enqueueSpec(env: Record<string, string>, dir: string, name: string, spec: string): Promise<string> {
    const path = join(dir, `${name}.yaml`);
    await writeFile(path, spec);
    const r = await cli(['enqueue', '--spec', path], env);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.trim();
  }

  it('runs a resource: local job in a container on the engine, never on the host', async () => {
    const b = await box();
    const hostPidNs = readlinkSync('/proc/self/ns/pid');
    const id = await enqueueSpec(
      b.env,
      b.dir,
      'local',
      [
        'resource: local',
        'docker: {docker_image: "localhost/busybox:test"}',
        'overrides:',
        '  entry_point: ["sh", "-c", "echo pid=$$ ns=$(readlink /proc/self/ns/pid) run=$WANDB_RUN_ID"]',
        '',
      ].join('\n'),
    );
    const run = await cli(['run', '--exit-when-idle'], b.env, 120_000);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain('launch: builder docker (no builder block, and the Docker engine at unix socket');
    const s = await status(b.env);
    expect(s.items.find((i) => i.id === id)).toMatchObject({ state: 'finished', exitCode: 0 });
    const log = await readText(join(b.stateDir, 'logs', `${id}.log`));
    // PID 1 in its own PID namespace: a container, not a process beside the agent.
    expect(log).toMatch(/pid=1 ns=pid:\[\d+\] run=\S+/);
    expect(log).not.toContain(`ns=${hostPidNs}`);
  });

  it('says which builder it chose: noop when no engine answers, docker with builder.type and a destination', async () => {
    const none = await sandbox({ DOCKER_HOST: 'unix:///nonexistent/docker.sock' });
    const r = await cli(['run', '--exit-when-idle'], none.env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      'launch: builder noop (no builder block, and no Docker engine at unix socket /nonexistent/docker.sock (DOCKER_HOST): ENOENT): jobs must name their image',
    );

    const b = await box();
    const config = join(b.dir, 'launch-config.yaml');
    await writeFile(
      config,
      `builder:\n  type: docker\n  destination: ${registries!.plain}/team/app\n  platform: linux/amd64\n  build-context-store: s3://bucket/ctx\n`,
    );
    const d = await cli(['run', '-c', config, '--exit-when-idle'], b.env);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stderr).toContain('launch: builder docker (builder.type: docker) on the Docker engine at unix socket');
    expect(d.stderr).toContain(
      `launch: registry: ${registries!.plain}/team/app (OCI registry, from builder.destination); no credentials for this host in the Docker config: anonymous`,
    );
    expect(d.stderr).toContain('launch: warning: builder.build-context-store is used only by kaniko builds: the docker builder ignores it');
  });

  it('refuses kaniko without a kube config at start-up with exit 2, and takes an ACR destination through the Azure package', async () => {
    const b = await box();
    const kaniko = join(b.dir, 'kaniko.yaml');
    await writeFile(kaniko, 'builder:\n  type: kaniko\n  build-context-store: s3://bucket/ctx\n  destination: 127.0.0.1:5000/team/app\n');
    const k = await cli(['run', '-c', kaniko, '--exit-when-idle'], b.env);
    expect(k.code).toBe(2);
    expect(k.stderr).toContain('builder.type is kaniko, but there is no Kubernetes cluster to run build Jobs in');

    const acr = join(b.dir, 'acr.yaml');
    await writeFile(acr, 'builder:\n  type: docker\n  destination: myacr.azurecr.io/team\n');
    const a = await cli(['run', '-c', acr, '--exit-when-idle'], b.env);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stderr).toContain(
      'launch: registry: myacr.azurecr.io/team (Azure Container Registry (acr), from builder.destination); credentials from DefaultAzureCredential',
    );
  });

  it('fails a job without an image at stage build, saying its code was not provided', async () => {
    const b = await box();
    const code = join(b.dir, 'code');
    await mkdir(code);
    await writeFile(join(code, 'Dockerfile'), 'FROM localhost/busybox:test\nCOPY run.sh /run.sh\nENTRYPOINT ["sh", "/run.sh"]\n');
    await writeFile(join(code, 'run.sh'), 'echo built\n');
    const id = await enqueueSpec(b.env, b.dir, 'build', `resource: local-container\noverrides:\n  dockerfile: Dockerfile\n  working_dir: ${code}\n`);
    const run = await cli(['run', '--exit-when-idle'], b.env, 120_000);
    expect(run.code, run.stderr).toBe(0);
    const item = (await status(b.env)).items.find((i) => i.id === id);
    expect(item).toMatchObject({ state: 'failed', failure: { stage: 'build' } });
    expect(item?.failure?.message).toMatch(/its code was not provided \(no build context directory\)/);
  });
});
