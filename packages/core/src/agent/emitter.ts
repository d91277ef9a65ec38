import type { AgentEventName, AgentEvents } from './types.js';

type Listener<E extends AgentEventName> = (payload: AgentEvents[E]) => void;

/** A tiny typed emitter; a throwing listener never breaks the agent. */
export class TypedEmitter {
  private readonly listeners = new Map<AgentEventName, Set<Listener<AgentEventName>>>();

  constructor(private readonly onListenerError: (error: unknown, event: AgentEventName) => void) {}

  on<E extends AgentEventName>(event: E, listener: Listener<E>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as Listener<AgentEventName>);
    return () => set.delete(listener as Listener<AgentEventName>);
  }

  /** Whether anyone listens to `event` (the agent asks runners to stream logs only then). */
  has(event: AgentEventName): boolean {
    return (this.listeners.get(event)?.size ?? 0) > 0;
  }

  emit<E extends AgentEventName>(event: E, payload: AgentEvents[E]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const l of set) {
      try {
        l(payload);
      } catch (error) {
        if (event !== 'agent:error') this.onListenerError(error, event);
      }
    }
  }
}
