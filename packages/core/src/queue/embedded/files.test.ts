import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { mapLimited, pidAlive } from './files.js';
import { waitFor } from './test-helpers.js';

describe('pidAlive', () => {
  it('sees this process alive and a killed, unreaped child (a zombie) as gone', async () => {
    expect(pidAlive(process.pid)).toBe(true);
    expect(pidAlive(0)).toBe(false);
    expect(pidAlive(-1)).toBe(false);
    // `sh` starts `sleep` and exec's nothing: kill -9 the grandchild while sh is stopped, so nobody reaps it.
    const sh = spawn('sh', ['-c', 'sleep 60 & echo $!; kill -STOP $$'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const pid = await new Promise<number>((resolve) => sh.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    try {
      expect(pidAlive(pid)).toBe(true);
      process.kill(pid, 'SIGKILL');
      await waitFor(() => !pidAlive(pid), 'the zombie to count as gone', 5000);
      // Still in the process table: kill(0) alone would call it alive.
      expect(() => process.kill(pid, 0)).not.toThrow();
    } finally {
      sh.kill('SIGKILL');
    }
  });
});

describe('mapLimited', () => {
  it('keeps order and never runs more than the limit at once', async () => {
    let inFlight = 0;
    let peak = 0;
    const out = await mapLimited(
      Array.from({ length: 50 }, (_, i) => i),
      4,
      async (i) => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((r) => setImmediate(r));
        inFlight--;
        return i * 2;
      },
    );
    expect(out).toEqual(Array.from({ length: 50 }, (_, i) => i * 2));
    expect(peak).toBe(4);
  });
});
