/**
 * Signals to a whole process group. Runs are spawned detached (their own group, pgid = pid), so one
 * signal reaches the job and every child it started, not just the top process.
 */
export type SignalResult = 'sent' | 'gone' | { error: NodeJS.ErrnoException };

export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): SignalResult {
  try {
    process.kill(-pgid, signal);
    return 'sent';
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (e.code === 'ESRCH') return 'gone';
    return { error: e };
  }
}

/**
 * True while any process of the group exists. Zombies count (kill(2) succeeds on them), which errs
 * on the side of sending a harmless SIGKILL later rather than leaving a live process behind.
 */
export function groupExists(pgid: number): boolean {
  const result = signalGroup(pgid, 0);
  // EPERM means a process exists that we may not signal.
  return result === 'sent' || (typeof result === 'object' && result.error.code === 'EPERM');
}
