import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { findBinary, pidsMentioning, startDaemon, untilReady, type Daemon } from './daemon.js';
import { makeTar, type TarEntry } from './tar.js';

const run = promisify(execFile);

/** The base image loaded into the test engine. */
export const BASE_IMAGE = 'localhost/busybox:test';

export interface DockerEngine {
  socketPath: string;
  daemon: Daemon;
  /** Stops dockerd (SIGTERM, then SIGKILL) and kills its containerd and shims if it could not. */
  stop(): Promise<void>;
}

/** Why the Docker engine cannot run here, or undefined when it can. */
export function dockerUnavailableReason(): string | undefined {
  if (!findBinary('dockerd')) return 'dockerd is not installed (apt-get install docker.io)';
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'dockerd needs root';
  const busybox = staticBusybox();
  if (!busybox.path) return busybox.reason;
  return undefined;
}

/** `/bin/busybox` when it is a static binary (the busybox-static package), which a scratch image can run. */
export function staticBusybox(): { path?: string; reason: string } {
  const path = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
  if (!path) return { reason: 'busybox is not installed (apt-get install busybox-static)' };
  const elf = readFileSync(path);
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) return { reason: `${path} is not a 64-bit ELF binary` };
  // A dynamically linked binary has a PT_INTERP program header; it would not run in an image without libc.
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  const phnum = elf.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    if (elf.readUInt32LE(phoff + i * phentsize) === 3) {
      return { reason: `${path} is dynamically linked (install busybox-static instead of busybox)` };
    }
  }
  return { path, reason: '' };
}

/**
 * Starts dockerd on a private socket under `dir` (data root, exec root, pid file and config file all
 * in there; no bridge, no iptables) and waits until `/_ping` answers.
 */
export async function startDockerEngine(dir: string, logDir: string, timeoutMs = 30_000): Promise<DockerEngine> {
  const dockerd = findBinary('dockerd');
  if (!dockerd) throw new Error('dockerd is not installed');
  mkdirSync(dir, { recursive: true });
  const socketPath = join(dir, 'docker.sock');
  const execRoot = join(dir, 'exec');
  // An empty config file, so that a system /etc/docker/daemon.json cannot change this engine.
  const configFile = join(dir, 'daemon.json');
  writeFileSync(configFile, '{}\n');
  const daemon = startDaemon(
    'dockerd',
    dockerd,
    [
      '--data-root',
      join(dir, 'data'),
      '--exec-root',
      execRoot,
      '--pidfile',
      join(dir, 'dockerd.pid'),
      '--config-file',
      configFile,
      '-H',
      `unix://${socketPath}`,
      '--iptables=false',
      '--ip-masq=false',
      '--bridge=none',
      // Containers a test left running are stopped quickly at teardown.
      '--shutdown-timeout=3',
    ],
    join(logDir, 'dockerd.log'),
  );
  const stop = async () => {
    await daemon.stop(20_000);
    // A SIGKILLed dockerd leaves its containerd and shims behind: they all name our exec root.
    for (const pid of pidsMentioning(execRoot)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  try {
    await untilReady(daemon, 'answer on /_ping', async () => ((await ping(socketPath)) ? true : undefined), timeoutMs);
  } catch (error) {
    await stop();
    throw error;
  }
  return { socketPath, daemon, stop };
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', method: 'GET', timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

/**
 * Builds the root file system of the base image: the static busybox in /bin with a link for every
 * applet it has, /usr/bin/env for shebangs, /etc/passwd and /etc/group with root and nobody, /tmp.
 */
export async function baseImageTar(busyboxPath: string): Promise<Buffer> {
  const { stdout } = await run(busyboxPath, ['--list']);
  const applets = [...new Set(stdout.split('\n').map((s) => s.trim()))].filter((a) => /^[A-Za-z0-9_.[\]-]+$/.test(a) && a !== 'busybox');
  const entries: TarEntry[] = [
    { type: 'dir', path: 'bin' },
    { type: 'file', path: 'bin/busybox', mode: 0o755, data: readFileSync(busyboxPath) },
    ...applets.sort().map((a): TarEntry => ({ type: 'symlink', path: `bin/${a}`, target: 'busybox' })),
    { type: 'dir', path: 'usr' },
    { type: 'dir', path: 'usr/bin' },
    { type: 'symlink', path: 'usr/bin/env', target: '/bin/busybox' },
    { type: 'dir', path: 'etc' },
    { type: 'file', path: 'etc/passwd', data: Buffer.from('root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n') },
    { type: 'file', path: 'etc/group', data: Buffer.from('root:x:0:\nnogroup:x:65534:\n') },
    { type: 'dir', path: 'root', mode: 0o700 },
    { type: 'dir', path: 'home' },
    { type: 'dir', path: 'tmp', mode: 0o1777 },
  ];
  return makeTar(entries);
}

/** Imports the busybox root file system into the engine as `image` (POST /images/create?fromSrc=-). */
export async function loadBaseImage(socketPath: string, image = BASE_IMAGE): Promise<void> {
  const busybox = staticBusybox();
  if (!busybox.path) throw new Error(busybox.reason);
  const tar = await baseImageTar(busybox.path);
  const docker = new Docker({ socketPath });
  const colon = image.lastIndexOf(':');
  const stream = await docker.importImage(Readable.from([tar]), {
    repo: image.slice(0, colon),
    tag: image.slice(colon + 1),
    changes: ['ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'CMD ["sh"]'],
  } as object);
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (error: Error | null, events: Array<{ error?: string }>) => {
      const failed = error?.message ?? events.find((e) => e.error)?.error;
      if (failed) reject(new Error(`importing ${image} failed: ${failed}`));
      else resolve();
    });
  });
  await docker.getImage(image).inspect();
}
