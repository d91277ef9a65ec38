/**
 * Injectable transport faults for the W&B test server, applied before an operation runs, so a
 * retried request executes exactly once.
 */
export interface FaultRule {
  /** HTTP status to answer with (429, 500, 502, 503 …), or `reset` to drop the connection. */
  status: number | 'reset';
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
