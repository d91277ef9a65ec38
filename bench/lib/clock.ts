/**
 * Wall-clock milliseconds with sub-millisecond resolution (the monotonic clock anchored at process
 * start), comparable with `date +%s%N` read by a job process over a run of a few minutes.
 */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
