// Resolves a W&B job in a process of its own, so a test can measure the resolver's memory apart from the test
// server's. Run with tsx from the repository root: baseUrl apiKey cacheDir warmJob job. It first resolves
// `warmJob` (a small job, so every code path is loaded), then `job`, sampling RSS meanwhile, and prints one JSON
// line: RSS before, the sampled peak and the process's maxRSS (getrusage), the code directory and progress lines.
import { silentLogger, type LaunchSpec, type ResolvedCodeJob } from '@launch/core';
import { createWandbJobResolver } from '../jobs/resolver.js';

const [baseUrl, apiKey, cacheDir, warmJob, job] = process.argv.slice(2) as [string, string, string, string, string];
const resolver = createWandbJobResolver({ apiKey, baseUrl, cacheDir, env: {}, retry: { baseDelayMs: 5, maxDelayMs: 20 } });
const request = (name: string, onProgress?: (line: string) => void) => ({
  job: name,
  spec: {} as LaunchSpec,
  runId: 'child',
  itemId: 'child',
  ...(onProgress ? { onProgress } : {}),
});
const ctx = { logger: silentLogger };
await resolver.resolve(request(warmJob), ctx);
global.gc?.();
const rssBefore = process.memoryUsage().rss;
let sampledPeak = rssBefore;
const sampler = setInterval(() => (sampledPeak = Math.max(sampledPeak, process.memoryUsage().rss)), 10);
const lines: string[] = [];
const started = performance.now();
const resolved = (await resolver.resolve(
  request(job, (line) => lines.push(line)),
  ctx,
)) as ResolvedCodeJob;
const ms = performance.now() - started;
clearInterval(sampler);
await resolver.close();
process.stdout.write(`${JSON.stringify({ rssBefore, sampledPeak, maxRss: process.resourceUsage().maxRSS * 1024, codeDir: resolved.codeDir, lines, ms })}\n`);
