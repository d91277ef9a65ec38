import { spawn, type ChildProcess } from 'node:child_process';

/**
 * The watchdog's program (plain Node, no dependencies). It reads `+<pgid>` / `-<pgid>` lines from the
 * agent; when its stdin closes while groups are still listed, the agent died without cancelling them
 * (SIGKILL, the OOM killer), so it sends SIGTERM to each group, then SIGKILL once the grace period
 * (its argument, in ms) is over, and exits. It ignores SIGINT/SIGTERM/SIGHUP: a Ctrl-C in the agent's
 * terminal must not end the watchdog before the agent has cleaned up.
 */
const WATCHDOG = `
const groups = new Set();
let buf = '';
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.on('SIGHUP', () => {});
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

/** Keeps the process groups of a runner's jobs from outliving the agent process. */
export interface ProcessGroupGuard {
  /** A job's process group started: kill it if the agent dies. */
  track(pgid: number): void;
  /** The job ended: its group (and its number, which the system may reuse) is no longer ours to kill. */
  untrack(pgid: number): void;
  /** Ends the watchdog; it kills the groups still tracked (none, after a clean shutdown). */
  close(): void;
  /** The watchdog's pid, once started (on the first `track`). */
  readonly pid: number | undefined;
}

/**
 * Makes local jobs die with the agent even when the agent cannot clean up (`kill -9`): a small
 * watchdog process, detached into its own process group, holds the list of the jobs' process groups
 * and kills them (TERM, then KILL after `graceMs`) when its pipe from the agent closes, which the
 * kernel does however the agent ends. Without it an orphaned job could finish its work after its item
 * went back to the queue and to another agent, and run twice. Started on the first job, so an idle
 * agent costs no extra process; it never keeps the agent's event loop alive.
 */
export function createProcessGroupGuard(options: { graceMs: number }): ProcessGroupGuard {
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
    child.stdin!.write(`${line}\n`);
  };
  return {
    track: (pgid) => write(`+${pgid}`),
    untrack: (pgid) => write(`-${pgid}`),
    close() {
      closed = true;
      child?.stdin?.end();
    },
    get pid() {
      return child?.pid;
    },
  };
}
