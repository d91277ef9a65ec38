/**
 * The agent image (docker/agent/Dockerfile), built by the real Docker engine from a Node base image made here
 * (nothing can be pulled): the host's node binary and the libraries it links, plus busybox for a shell. The
 * container runs as the chart runs it: read-only root, tmpfs HOME and /tmp, no capabilities, no new privileges.
 */
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { dockerService, serviceAvailable, waitFor } from '@launch/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from './helm.js';

const docker = dockerService();
const cli = join(repoRoot, 'examples/agent/dist/cli.js');
const built = ['examples/agent/dist/cli.js', ...['core', 'runners', 'builders', 'wandb'].map((p) => `packages/${p}/dist/index.js`)].every((f) =>
  existsSync(join(repoRoot, f)),
);
const enabled =
  serviceAvailable('the Docker engine', docker !== undefined) &&
  serviceAvailable('the built agent (run `npx -y pnpm@10 build` first)', built) &&
  serviceAvailable('a static busybox (apt-get install busybox-static)', existsSync('/bin/busybox'));

// dockerode comes with the test kit; this folder is not a workspace package.
const Docker = createRequire(join(repoRoot, 'packages/testkit/package.json'))('dockerode') as new (o: { socketPath: string }) => DockerClient;

/* Just the parts of dockerode used here. */
interface DockerClient {
  importImage(file: NodeJS.ReadableStream, opts: object): Promise<NodeJS.ReadableStream>;
  buildImage(file: NodeJS.ReadableStream, opts: object): Promise<NodeJS.ReadableStream>;
  createContainer(opts: object): Promise<Container>;
  getImage(name: string): { inspect(): Promise<ImageInfo>; remove(o?: object): Promise<unknown> };
  modem: { followProgress(s: NodeJS.ReadableStream, done: (err: Error | null, out: ProgressEvent[]) => void): void };
}
interface ProgressEvent {
  stream?: string;
  error?: string;
  errorDetail?: { message?: string };
}
interface ImageInfo {
  Config: { User: string; Env: string[]; Entrypoint: string[] | null; Cmd: string[] | null; WorkingDir: string; ExposedPorts?: Record<string, unknown> };
}
interface Container {
  id: string;
  start(): Promise<unknown>;
  wait(): Promise<{ StatusCode: number }>;
  kill(o: { signal: string }): Promise<unknown>;
  logs(o: object): Promise<Buffer>;
  remove(o: object): Promise<unknown>;
  inspect(): Promise<{ State: { Running: boolean } }>;
}

const tag = `localhost/launch-agent:test-${process.pid}`;
const baseTag = `localhost/launch-node-base:test-${process.pid}`;
let client: DockerClient;
let work: string;
const containers: Container[] = [];

function run(file: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { cwd: opts.cwd, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(' ')} failed: ${String(stderr) || error.message}`));
      else resolve(String(stdout));
    });
  });
}

/** `tar -c` of a directory as a stream, for the engine API. */
function tarStream(dir: string, entries: string[]): NodeJS.ReadableStream {
  const child = spawn('tar', ['-C', dir, '-cf', '-', ...entries], { stdio: ['ignore', 'pipe', 'inherit'] });
  return child.stdout;
}

function follow(stream: NodeJS.ReadableStream): Promise<ProgressEvent[]> {
  return new Promise((resolve, reject) => {
    client.modem.followProgress(stream, (error, events) => {
      const failed = error?.message ?? events.find((e) => e.error)?.error;
      if (failed) reject(new Error(`${failed}\n${events.map((e) => e.stream ?? '').join('')}`));
      else resolve(events);
    });
  });
}

/** A Node base image: the host's node and the shared libraries it needs, busybox as /bin/sh and friends. */
async function makeNodeBase(): Promise<void> {
  const root = join(work, 'rootfs');
  const node = realpathSync(process.execPath);
  const put = (from: string, to: string, mode = 0o755) => {
    mkdirSync(join(root, dirname(to)), { recursive: true });
    copyFileSync(realpathSync(from), join(root, to));
    chmodSync(join(root, to), mode);
  };
  put(node, 'usr/local/bin/node');
  const ldd = await run('ldd', [node]);
  for (const line of ldd.split('\n')) {
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
    const path = /=>\s*(\/\S+)/.exec(line)?.[1] ?? /^\s*(\/\S+)\s/.exec(line)?.[1];
    if (path) put(path, path.slice(1));
  }
  put('/bin/busybox', 'bin/busybox');
  const applets = (await run('/bin/busybox', ['--list']))
    .split('\n')
    .map((s) => s.trim())
    .filter((a) => /^[a-z0-9_.[-]+$/.test(a) && a !== 'busybox');
  for (const a of applets) symlinkSync('busybox', join(root, 'bin', a));
  mkdirSync(join(root, 'usr/bin'), { recursive: true });
  symlinkSync('/bin/busybox', join(root, 'usr/bin/env'));
  mkdirSync(join(root, 'etc'), { recursive: true });
  // As in the Node images: uid 1000 is "node" with its own home; the Dockerfile must replace it.
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\nnode:x:1000:\n');
  for (const d of ['root', 'home/node', 'usr/local/share/ca-certificates']) mkdirSync(join(root, d), { recursive: true });
  mkdirSync(join(root, 'tmp'));
  chmodSync(join(root, 'tmp'), 0o1777);
  const [repo, version] = [baseTag.slice(0, baseTag.lastIndexOf(':')), baseTag.slice(baseTag.lastIndexOf(':') + 1)];
  await follow(
    await client.importImage(tarStream(root, ['.']), {
      repo,
      tag: version,
      changes: ['ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    }),
  );
}

/** Runs the image as the chart runs it; resolves once the container has exited. */
async function startContainer(opts: { cmd?: string[]; entrypoint?: string[]; network?: string }): Promise<Container> {
  const c = await client.createContainer({
    Image: tag,
    Cmd: opts.cmd,
    Entrypoint: opts.entrypoint,
    Env: ['NO_COLOR=1'],
    HostConfig: {
      NetworkMode: opts.network ?? 'none',
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': 'rw,size=64m', '/home/launch_agent': 'rw,size=64m,uid=1000,gid=1000,mode=0750' },
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      Memory: 512 * 1024 * 1024,
    },
  });
  containers.push(c);
  await c.start();
  return c;
}

/** The container's stdout and stderr, de-multiplexed (no TTY: 8-byte frame headers). */
async function output(c: Container): Promise<string> {
  const raw = await c.logs({ stdout: true, stderr: true, follow: false });
  const parts: string[] = [];
  for (let i = 0; i + 8 <= raw.length; ) {
    const size = raw.readUInt32BE(i + 4);
    parts.push(raw.subarray(i + 8, i + 8 + size).toString());
    i += 8 + size;
  }
  return parts.join('');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe.runIf(enabled)('the agent image', () => {
  beforeAll(async () => {
    client = new Docker({ socketPath: docker!.socketPath });
    work = mkdtempSync(join(tmpdir(), 'launch-agent-image-'));
    // The build context, exactly as docker/agent/Dockerfile documents it.
    const deployed = join(work, 'context');
    await run('npx', ['-y', 'pnpm@10', '--filter', 'launch-agent', 'deploy', '--prod', '--legacy', '--prefer-offline', deployed], { cwd: repoRoot });
    copyFileSync(join(repoRoot, 'docker/agent/Dockerfile'), join(deployed, 'Dockerfile'));
    await makeNodeBase();
    await follow(
      await client.buildImage(tarStream(deployed, ['Dockerfile', 'package.json', 'dist', 'node_modules']), {
        t: tag,
        buildargs: JSON.stringify({ BASE_IMAGE: baseTag }),
        forcerm: true,
      }),
    );
  }, 600_000);

  afterAll(async () => {
    if (!client) return;
    for (const c of containers) await c.remove({ force: true }).catch(() => undefined);
    await client
      .getImage(tag)
      .remove({ force: true })
      .catch(() => undefined);
    await client
      .getImage(baseTag)
      .remove({ force: true })
      .catch(() => undefined);
    if (work) rmSync(work, { recursive: true, force: true });
  }, 120_000);

  it('runs as uid 1000 with HOME=/home/launch_agent and launch-agent as its entrypoint', async () => {
    const info = await client.getImage(tag).inspect();
    expect(info.Config.User).toBe('1000:1000');
    expect(info.Config.Env).toEqual(expect.arrayContaining(['HOME=/home/launch_agent', 'LAUNCH_HEALTH_PORT=8080', 'LAUNCH_HEALTH_HOST=0.0.0.0']));
    expect(info.Config.Entrypoint).toEqual(['launch-agent']);
    expect(info.Config.WorkingDir).toBe('/home/launch_agent');
    expect(Object.keys(info.Config.ExposedPorts ?? {})).toEqual(['8080/tcp']);

    const c = await startContainer({
      entrypoint: ['sh', '-c'],
      cmd: ['id -u; id -g; grep ":1000:" /etc/passwd; ls -d "$HOME/.config" 2>&1; test -w / && echo root-writable || echo root-read-only'],
    });
    expect((await c.wait()).StatusCode).toBe(0);
    expect((await output(c)).trim().split('\n')).toEqual([
      '1000',
      '1000',
      'launch_agent:x:1000:1000:Launch agent:/home/launch_agent:/bin/sh',
      // The tmpfs HOME hides the image's own ~/.config, as the chart's emptyDir does; the chart mounts the config there.
      // (ls's complaint goes to stdout too: stdout and stderr arrive as separate streams, in no fixed order.)
      expect.stringMatching(/No such file|\.config/),
      'root-read-only',
    ]);
  });

  it('answers launch-agent --help', async () => {
    const c = await startContainer({ cmd: ['--help'] });
    expect((await c.wait()).StatusCode).toBe(0);
    expect(await output(c)).toContain('Usage: launch-agent [command] [options]');
  });

  it('takes a job off the embedded queue and exits 0 when idle, with a read-only root', async () => {
    const state = '/home/launch_agent/state';
    const script = [
      `launch-agent enqueue --state-dir ${state} -- sh -c 'echo job-output-$((6*7)) > /tmp/job.out'`,
      `launch-agent run --exit-when-idle --state-dir ${state}`,
      'cat /tmp/job.out',
      `launch-agent status --json --state-dir ${state}`,
    ].join(' && ');
    const c = await startContainer({ entrypoint: ['sh', '-c'], cmd: [script] });
    const { StatusCode } = await c.wait();
    const out = await output(c);
    expect(StatusCode, out).toBe(0);
    expect(out).toContain('job-output-42');
    expect(out).toMatch(/"state":\s*"finished"/);
  });

  it('stops cleanly on SIGTERM (Node as PID 1 handles it) and exits 0', async () => {
    const c = await startContainer({ cmd: ['run', '--state-dir', '/home/launch_agent/state', '--log-format', 'json'] });
    await waitFor(async () => (await output(c)).includes('"agent:registered"'), { timeoutMs: 60_000, intervalMs: 200, what: 'the agent to register' });
    await c.kill({ signal: 'SIGTERM' });
    const { StatusCode } = await c.wait();
    const out = await output(c);
    expect(StatusCode, out).toBe(0);
    expect(out).toContain('"agent:stopped"');
    expect(out).toContain('signal SIGTERM');
  });

  // Runs once the agent has --health-port (issue 13, item 3); until then `run --help` does not list it.
  const hasHealthPort = built && readFileSync(cli, 'utf8').includes('health-port');
  it.runIf(hasHealthPort)('serves /healthz and /readyz on --health-port, as the chart probes them', async () => {
    const port = await freePort();
    const c = await startContainer({
      cmd: ['run', '--state-dir', '/home/launch_agent/state', '--health-port', String(port), '--health-host', '127.0.0.1'],
      network: 'host',
    });
    const healthz = await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200, {
      timeoutMs: 60_000,
      intervalMs: 200,
      what: '/healthz',
    });
    expect(healthz).toBe(true);
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200, { timeoutMs: 60_000, intervalMs: 200, what: '/readyz' });
    await c.kill({ signal: 'SIGTERM' });
    expect((await c.wait()).StatusCode).toBe(0);
  });
});
