import { spawn, type ChildProcess } from 'node:child_process';
import type { EngineEndpoint } from './engine.js';
import { LABEL } from './labels.js';

/**
 * The watchdog's program (plain Node, no dependencies). Its argument is a JSON config: the engine address,
 * the grace period and the label names. It reads `+<name> <run id>` / `-<name>` lines from the agent; when
 * its stdin closes while containers are still listed, the agent died without cleaning up, so for each
 * container that still carries that run id and has not ended it sends SIGTERM, then SIGKILL once the grace period is over,
 * and finally removes it (label `launch.dev/remove=true`) or renames it, which frees the item's name for
 * its next run and keeps a restarted agent from adopting a container it killed.
 */
const WATCHDOG = `
const http = require('node:http');
const cfg = JSON.parse(process.argv[1]);
const tracked = new Map();
let buf = '';
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.on('SIGHUP', () => {});
const call = (method, path) => new Promise((resolve) => {
  const req = http.request({ ...cfg.engine, method, path, headers: { 'content-length': 0 } }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (d) => (body += d));
    res.on('end', () => resolve({ status: res.statusCode, body }));
  });
  req.on('error', () => resolve({ status: 0, body: '' }));
  req.setTimeout(10000, () => req.destroy());
  req.end();
});
const inspect = async (name) => {
  const r = await call('GET', '/containers/' + encodeURIComponent(name) + '/json');
  if (r.status !== 200) return undefined;
  try { return JSON.parse(r.body); } catch { return undefined; }
};
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const line = buf.slice(0, i); buf = buf.slice(i + 1);
    const [name, runId] = line.slice(1).split(' ');
    if (!name) continue;
    if (line[0] === '+') tracked.set(name, decodeURIComponent(runId || '')); else if (line[0] === '-') tracked.delete(name);
  }
});
process.stdin.on('close', async () => {
  const mine = [];
  for (const [name, runId] of tracked) {
    const info = await inspect(name);
    const labels = (info && info.Config && info.Config.Labels) || {};
    // A container that already ended keeps its outcome for the next agent; only live ones are stopped.
    const live = info && info.State && ['created', 'running', 'paused', 'restarting'].includes(info.State.Status);
    if (live && labels[cfg.labels.runId] === runId) mine.push({ name, id: info.Id, remove: labels[cfg.labels.remove] === 'true' });
  }
  for (const c of mine) await call('POST', '/containers/' + c.id + '/kill?signal=SIGTERM');
  const deadline = Date.now() + cfg.graceMs;
  for (;;) {
    const states = await Promise.all(mine.map((c) => inspect(c.id)));
    if (states.every((s) => !s || !s.State || !s.State.Running) || Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const c of mine) await call('POST', '/containers/' + c.id + '/kill?signal=SIGKILL');
  for (const c of mine) {
    if (c.remove) await call('DELETE', '/containers/' + c.id + '?force=1&v=1');
    else await call('POST', '/containers/' + c.id + '/rename?name=' + encodeURIComponent(c.name + '-orphaned-' + c.id.slice(0, 12)));
  }
  process.exit(0);
});
`;

/** Keeps the containers of a runner from outliving the agent process. */
export interface ContainerOrphanGuard {
  /** A container will be (or was) created under this name for this run: stop it if the agent dies. */
  track(name: string, runId: string): void;
  /** The run ended (or was never created): nothing to stop. */
  untrack(name: string): void;
  /** Ends the watchdog after a clean shutdown (nothing tracked, so it stops nothing). */
  close(): void;
  /** The watchdog's pid, once started. */
  readonly pid: number | undefined;
}

/**
 * Starts (on first use) a detached watchdog process, outside the agent's process group, that holds the names
 * of the containers this runner started and stops them when its pipe from the agent closes: the agent died
 * (SIGKILL, OOM) without cancelling its runs. Names are tracked before the container is created, so a crash
 * between create and start cannot leave one behind. Idle runners cost no process.
 */
export function createContainerOrphanGuard(endpoint: EngineEndpoint, graceMs: number): ContainerOrphanGuard {
  let child: ChildProcess | undefined;
  let closed = false;
  const engine = endpoint.kind === 'unix' ? { socketPath: endpoint.socketPath } : { host: endpoint.host, port: endpoint.port };
  const config = JSON.stringify({ engine, graceMs, labels: { runId: LABEL.runId, remove: LABEL.remove } });
  const write = (line: string) => {
    if (closed) return;
    if (!child) {
      child = spawn(process.execPath, ['-e', WATCHDOG, config], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
      child.on('error', () => {});
      child.stdin!.on('error', () => {});
      child.unref();
      (child.stdin as unknown as { unref?: () => void }).unref?.();
    }
    child.stdin!.write(`${line}\n`);
  };
  return {
    track: (name, runId) => write(`+${name} ${encodeURIComponent(runId)}`),
    untrack: (name) => write(`-${name}`),
    close() {
      closed = true;
      child?.stdin?.end();
    },
    get pid() {
      return child?.pid;
    },
  };
}
