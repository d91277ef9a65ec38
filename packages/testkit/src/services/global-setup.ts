/**
 * vitest global setup: starts the real daemons that tests share (filled in by the services work).
 * Each service publishes where it listens through environment variables that forked test workers inherit.
 */
export async function setup(): Promise<() => Promise<void>> {
  return async () => {};
}
