/** W&B's run states. */
export const RUN_STATES = ['unknown', 'starting', 'running', 'failed', 'finished', 'stopping', 'stopped', 'preempted'] as const;
export type RunState = (typeof RUN_STATES)[number];

export const TERMINAL_STATES: ReadonlySet<RunState> = new Set(['failed', 'finished', 'stopped', 'preempted']);
export function isTerminal(state: RunState): boolean {
  return TERMINAL_STATES.has(state);
}

/** The agent's own status as reported to the queue source. */
export type AgentStatus = 'POLLING' | 'RUNNING' | 'KILLED';
