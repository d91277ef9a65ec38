/**
 * Injectable transport faults for the W&B test server. A status or `reset` answers *before* the
 * operation runs (the request has no effect, as with a load balancer's refusal); `lost-reply` runs
 * the operation and then drops the connection without answering (the server acted, the client
 * cannot know).
 */
export interface FaultRule {
  /**
   * HTTP status to answer with (429, 500, 502, 503 …) without acting; `reset` to drop the
   * connection without acting; `lost-reply` to act, then drop the connection without answering.
   */
  status: number | 'reset' | 'lost-reply';
  /** Only requests for this GraphQL operation (e.g. `popFromRunQueue`); any when unset. */
  operation?: string;
  /** How many requests the rule hits. Default 1. */
  times?: number;
  /** `Retry-After` header value in seconds (429/503). */
  retryAfterSeconds?: number;
}

export interface FaultInjector {
  add(rule: FaultRule): void;
  clear(): void;
  /** Rules not yet used up. */
  pending(): number;
  /** The rule that hits this request, consuming one of its uses. */
  take(operation: string | undefined): FaultRule | undefined;
}

export function createFaultInjector(): FaultInjector {
  const rules: Array<FaultRule & { left: number }> = [];
  return {
    add(rule) {
      rules.push({ ...rule, left: rule.times ?? 1 });
    },
    clear() {
      rules.length = 0;
    },
    pending() {
      return rules.reduce((n, r) => n + r.left, 0);
    },
    take(operation) {
      const rule = rules.find((r) => r.left > 0 && (r.operation === undefined || r.operation === operation));
      if (!rule) return undefined;
      rule.left -= 1;
      return rule;
    },
  };
}
