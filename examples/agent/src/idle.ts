import type { Agent } from '@launch/core';

export interface IdleWatchOptions {
  agent: Pick<Agent, 'on'>;
  /**
   * Extra check once the agent reports idle: true when the source holds no work that may still come
   * back (the embedded queue: an item claimed by an agent that died returns when its lease expires).
   */
  queueEmpty?: () => Promise<boolean>;
  onIdle: () => void;
}

/**
 * Calls `onIdle` once, the first time the agent reports `agent:idle` (a poll found no work and no job
 * runs) and `queueEmpty` agrees. Used by `--exit-when-idle` and the demo.
 */
export function watchIdle(options: IdleWatchOptions): () => void {
  let done = false;
  let checking = false;
  const off = options.agent.on('agent:idle', () => {
    if (done || checking) return;
    checking = true;
    void (options.queueEmpty ?? (async () => true))()
      .then((empty) => {
        if (empty && !done) {
          done = true;
          off();
          options.onIdle();
        }
      })
      .catch(() => {})
      .finally(() => {
        checking = false;
      });
  });
  return () => {
    done = true;
    off();
  };
}
