/** W&B's macro syntax: `${name}` (utils.MACRO_REGEX). */
const MACRO = /\$\{(\w+)\}/g;

/**
 * Fills `${name}` macros in every string of `value`, recursively. Unknown macros are left as they are
 * (W&B's behaviour), so a literal `${HOME}` meant for a shell inside the container survives when the
 * agent has no such variable.
 */
export function fillMacros<T>(value: T, vars: Record<string, string | undefined>): T {
  return fill(value, vars, 0) as T;
}

function fill(value: unknown, vars: Record<string, string | undefined>, depth: number): unknown {
  if (depth > 64) return value;
  if (typeof value === 'string') {
    return value.includes('${') ? value.replace(MACRO, (whole, name: string) => vars[name] ?? whole) : value;
  }
  if (Array.isArray(value)) return value.map((v) => fill(v, vars, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = fill(v, vars, depth + 1);
    return out;
  }
  return value;
}

/** The macro variables of a job: the agent's environment, then W&B's named macros (which win). */
export function macroVars(
  env: Record<string, string | undefined>,
  job: { project?: string | null; entity?: string | null; runId: string; runName?: string | null; image?: string; author?: string | null },
): Record<string, string | undefined> {
  return {
    ...env,
    project_name: job.project ?? undefined,
    entity_name: job.entity ?? undefined,
    run_id: job.runId,
    run_name: job.runName ?? undefined,
    image_uri: job.image,
    author: job.author ?? undefined,
  };
}
