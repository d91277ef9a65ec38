import { spawn, type ChildProcess } from 'node:child_process';
import type { Agent } from '@launch/core';

/**
 * The watchdog's program. It reads "+<pgid>" / "-<pgid>" lines from the agent; when its stdin
 * closes while groups are still listed, the agent died without cleaning up (SIGKILL, OOM killer),
 * so it sends TERM to each group, then KILL after the grace period, and exits.
 */
const WATCHDOG = `
const groups = new Set();
let buf = '';
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  let i;
  while ((i = buf.indexOf('\\n')) >= 0) {
    const line = buf.slice(0, i); buf = buf.slice(i + 1);
    const pgid = Number(line.slice(1));
    if (!Number.isInteger(pgid) || pgid <= 1) continue;
    if (line[0] === '+') groups.add(pgid); else if (line[0] === '-') groups.delete(pgid);
  }
});
const signal = (sig) => { for (const g of groups) { try { process.kill(-g, sig); } catch { groups.delete(g); } } };
process.stdin.on('close', () => {
  signal('SIGTERM');
  const deadline = Date.now() + Number(process.argv[1]);
  const check = () => {
    signal(0);
    if (groups.size === 0) process.exit(0);
    if (Date.now() >= deadline) { signal('SIGKILL'); process.exit(0); }
    setTimeout(check, 100);
  };
  check();
});
`;

export interface OrphanGuard {
  /** A local job's process group started. */
  track(pgid: number): void;
  /** The job ended; its group is no longer ours to kill. */
  untrack(pgid: number): void;
  /** Ends the watchdog (nothing tracked after a clean stop, so it kills nothing). */
  close(): void;
}

/**
 * Makes local jobs die with the agent even when the agent cannot clean up (`kill -9`): a small
 * watchdog process, outside the agent's process group, holds the list of the jobs' process groups
 * and kills them when its pipe from the agent closes. Without it an orphaned job could finish its
 * work after its item was handed to another agent, and the job would run twice. Started on the
 * first job, so an idle agent costs no extra process.
 */
export function createOrphanGuard(options: { graceMs: number }): OrphanGuard {
  let child: ChildProcess | undefined;
  let closed = false;
  const write = (line: string) => {
    if (closed) return;
    if (!child) {
      child = spawn(process.execPath, ['-e', WATCHDOG, String(options.graceMs)], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
      child.on('error', () => {});
      child.stdin!.on('error', () => {});
      child.unref();
      (child.stdin as unknown as { unref?: () => void }).unref?.();
    }
    child.stdin!.write(line + '\n');
  };
  return {
    track: (pgid) => write(`+${pgid}`),
    untrack: (pgid) => write(`-${pgid}`),
    close() {
      closed = true;
      child?.stdin?.end();
    },
  };
}

/**
 * Tracks the process group of every local-process run of `agent` (the runner starts each run as
 * its own group, backend id = pid = pgid) from submission until its item ends.
 */
export function guardLocalJobs(agent: Pick<Agent, 'on'>, guard: OrphanGuard): OrphanGuard {
  const groups = new Map<string, number>();
  agent.on('run:submitted', ({ item, runner, backendId }) => {
    const pgid = Number(backendId);
    if (runner !== 'local-process' || !Number.isInteger(pgid) || pgid <= 1) return;
    groups.set(item.id, pgid);
    guard.track(pgid);
  });
  const release = ({ item }: { item: { id: string } }) => {
    const pgid = groups.get(item.id);
    if (pgid === undefined) return;
    groups.delete(item.id);
    guard.untrack(pgid);
  };
  agent.on('item:finished', release);
  agent.on('item:failed', release);
  agent.on('item:requeued', release);
  return guard;
}
