// The ceiling of Node's child_process on this machine: spawns `true` N times from one event loop
// with the local-process runner's options (own process group, stdout/stderr piped), at most P at
// once (0 = all at once), and prints {"elapsedMs":…} once every child has closed. No queue, no agent.
//   node bench/lib/node-spawn.mjs <N> <P>
import { spawn } from 'node:child_process';

const total = Number(process.argv[2] ?? 2000);
const limit = Number(process.argv[3] ?? 0) || Number.POSITIVE_INFINITY;
const started = performance.now();
let launched = 0;
let running = 0;
let closed = 0;
await new Promise((resolve, reject) => {
  const next = () => {
    while (running < limit && launched < total) {
      launched++;
      running++;
      const child = spawn('true', [], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.resume();
      child.stderr.resume();
      child.once('error', reject);
      child.once('close', (code) => {
        if (code !== 0) reject(new Error(`true exited with ${code}`));
        running--;
        if (++closed === total) resolve();
        else next();
      });
    }
  };
  next();
});
process.stdout.write(`${JSON.stringify({ elapsedMs: performance.now() - started })}\n`);
