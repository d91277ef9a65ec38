import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

/** Where scripts/ci/install-moto.sh unpacks moto (override with MOTO_PREFIX). */
export const MOTO_PREFIX = process.env.MOTO_PREFIX ?? '/opt/launch-moto';
const SITE = join(MOTO_PREFIX, 'usr/lib/python3/dist-packages');

/** Whether moto is installed where install-moto.sh puts it. */
export function motoInstalled(): boolean {
  return existsSync(join(SITE, 'moto', 'server.py')) && existsSync('/usr/bin/python3');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface RunningMoto {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  /** Clears every resource moto holds (`POST /moto-api/reset`). */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Starts moto's server (`python3 -m moto.server`) on a free loopback port and waits, with a deadline,
 * until it answers. Moto accepts any credentials and serves every service on one port, routing by
 * the SigV4 credential scope and `X-Amz-Target`.
 */
export async function startMoto(timeoutMs = 30_000): Promise<RunningMoto> {
  const port = await freePort();
  const child: ChildProcess = spawn('/usr/bin/python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PYTHONPATH: SITE, HOME: process.env.HOME ?? '/tmp' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto exited with ${child.exitCode}: ${stderr}`);
    try {
      const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`moto did not answer on ${endpoint} within ${timeoutMs} ms: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    endpoint,
    async reset() {
      await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
