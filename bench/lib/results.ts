import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, freemem, loadavg, release, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The `bench/` directory. */
export const benchDir = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The repository root. */
export const repoRoot = join(benchDir, '..');

/** What machine and runtime produced a result. */
export function machineInfo(): Record<string, unknown> {
  const list = cpus();
  return {
    node: process.version,
    platform: `${process.platform} ${release()}`,
    cpus: list.length,
    cpuModel: list[0]?.model,
    memoryGiB: Number((totalmem() / 1024 ** 3).toFixed(1)),
    freeMemoryGiB: Number((freemem() / 1024 ** 3).toFixed(1)),
    // Other work on the machine skews the figures: the 1/5/15-minute load averages when the result was written.
    loadAverage: loadavg().map((l) => Number(l.toFixed(2))),
    date: new Date().toISOString(),
  };
}

/** Writes `bench/results/<name>.json` (the figures plus machine info); returns the path. */
export function writeResult(name: string, result: Record<string, unknown>): string {
  const out = join(benchDir, 'results', `${name}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ name, ...result, machine: machineInfo() }, null, 2)}\n`);
  return out;
}

/** Runs `run` when the calling module is the entry point (`npx tsx bench/x.ts`), exiting 0 or 1. */
export function runIfMain(moduleUrl: string, run: () => Promise<unknown>): void {
  if (!process.argv[1] || moduleUrl !== pathToFileURL(process.argv[1]).href) return;
  run().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
      process.exit(1);
    },
  );
}

/** Resolves once `check` is true; polls every `everyMs` and throws after `timeoutMs`. */
export async function waitUntil(check: () => boolean, timeoutMs: number, what: string, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`bench: timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
