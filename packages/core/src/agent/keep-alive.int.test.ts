import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';

const fixture = fileURLToPath(new URL('./__fixtures__/keep-alive.ts', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
let dir: string | undefined;

afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('a started agent holds its process open until it has stopped, then lets it exit by itself', async () => {
  dir = await mkdtemp(join(tmpdir(), 'launch-keep-alive-'));
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, join(dir, 'queue')], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  try {
    const deadline = Date.now() + 60_000;
    while (!out.includes('started\n')) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`the agent did not start: ${out}${err}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    // The embedded queue, the loop and the runner hold no referenced handle of their own: without the
    // agent's, the process ended right after start() (an embedder's agent died in its first idle moment).
    await new Promise((r) => setTimeout(r, 1500));
    expect(child.exitCode, `the process exited by itself while its agent was running: ${out}${err}`).toBeNull();
    child.kill('SIGUSR2');
    const [code, signal] = await exited;
    expect({ code, signal, out }).toEqual({ code: 0, signal: null, out: 'started\nstopped\n' });
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}, 90_000);
