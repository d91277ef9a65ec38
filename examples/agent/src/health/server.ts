import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LaunchError, childLogger } from '@launch/core';
import { createLaunchMetrics, type LaunchMetrics } from './metrics.js';
import { parseHealthServerOptions, type HealthServerOptions } from './options.js';
import { createHealthProbe, type HealthProbe, type HealthReport } from './probe.js';

export interface HealthServer {
  /** `http://host:port`, with the port actually bound. */
  readonly url: string;
  readonly port: number;
  readonly metrics: LaunchMetrics;
  /** What `/healthz` answers now. */
  liveness(): HealthReport;
  /** What `/readyz` answers now. */
  readiness(): HealthReport;
  /** Stops listening, drops open connections and detaches from the agent. Idempotent. */
  close(): Promise<void>;
}

const PATHS = ['/healthz', '/readyz', '/metrics'];

/**
 * Serves `/healthz` (the agent loop turns), `/readyz` (registered and serving, every backend check passed) and `/metrics`
 * (Prometheus text, see docs/metrics.md) for one agent, from its public events and `snapshot()`.
 * Binds 127.0.0.1 unless `host` says otherwise. Call it before `agent.start()` so that `/readyz`
 * answers 503 while the agent starts and every job is counted.
 *
 * @example
 * ```ts
 * const metrics = createLaunchMetrics();
 * const agent = createAgent({ source: metrics.instrumentSource(queue), queues: ['default'], runners });
 * const health = await startHealthServer({ agent, metrics, port: 9464, logger });
 * await agent.start();
 * // …
 * await health.close();
 * ```
 */
export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const o = parseHealthServerOptions(options);
  const logger = childLogger(o.logger, { component: 'health' });
  const metrics = o.metrics ?? createLaunchMetrics({ processMetrics: o.processMetrics ?? false, ...(options.now ? { now: options.now } : {}) });
  const probe: HealthProbe = createHealthProbe({ agent: o.agent, staleAfterMs: o.staleAfterMs, now: o.now, pendingPops: () => metrics.pendingPops() });
  // Backend checks: each runs at start and again every recheckMs while it fails; /readyz waits for all of them.
  type CheckState = { state: 'pending' } | { state: 'ok' } | { state: 'failed'; message: string };
  const checkState = new Map<string, CheckState>(o.checks.map((c) => [c.name, { state: 'pending' }]));
  const stopChecks = new AbortController();
  const recheck = new Set<ReturnType<typeof setTimeout>>();
  const runCheck = (check: (typeof o.checks)[number]) => {
    check.run(stopChecks.signal).then(
      () => {
        if (checkState.get(check.name)?.state !== 'ok') logger.info({ check: check.name }, 'health: backend verified');
        checkState.set(check.name, { state: 'ok' });
      },
      (error: unknown) => {
        if (stopChecks.signal.aborted) return;
        const message = error instanceof Error ? error.message : String(error);
        const before = checkState.get(check.name);
        if (before?.state !== 'failed' || before.message !== message) {
          logger.warn({ check: check.name, err: message }, 'health: backend check failed; /readyz answers 503');
        }
        checkState.set(check.name, { state: 'failed', message });
        const timer = setTimeout(() => {
          recheck.delete(timer);
          runCheck(check);
        }, o.recheckMs);
        timer.unref();
        recheck.add(timer);
      },
    );
  };
  const readiness = (): HealthReport => {
    const report = probe.readiness();
    if (checkState.size === 0) return report;
    const entries = [...checkState];
    const checks = Object.fromEntries(entries.map(([name, c]) => [name, c.state === 'failed' ? `failed: ${c.message}` : c.state]));
    if (!report.ok) return { ...report, checks };
    for (const [name, c] of entries) {
      if (c.state === 'failed') return { ...report, ok: false, status: 'unverified', reason: `${name}: ${c.message}`, checks };
    }
    const pending = entries.filter(([, c]) => c.state === 'pending').map(([name]) => name);
    if (pending.length > 0) return { ...report, ok: false, status: 'verifying', reason: `verifying ${pending.join(', ')}`, checks };
    return { ...report, checks };
  };
  let detach: () => void;
  try {
    detach = metrics.observeAgent(o.agent, { ready: () => readiness().ok, lastLoopAt: () => probe.lastLoopAt(), runners: o.runners });
  } catch (error) {
    probe.close();
    throw error;
  }

  const answer = (res: ServerResponse, head: boolean, code: number, type: string, body: string) => {
    res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
    res.end(head ? undefined : body);
  };
  const json = (res: ServerResponse, head: boolean, code: number, body: unknown) =>
    answer(res, head, code, 'application/json; charset=utf-8', JSON.stringify(body) + '\n');

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? '';
    const head = method === 'HEAD';
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://localhost').pathname;
    } catch {
      return json(res, head, 400, { error: 'bad request target' });
    }
    if (!PATHS.includes(path)) return json(res, head, 404, { error: `not found: try ${PATHS.join(', ')}` });
    if (method !== 'GET' && !head) {
      res.setHeader('allow', 'GET, HEAD');
      return json(res, head, 405, { error: `method ${method} not allowed: use GET` });
    }
    if (path === '/metrics') return answer(res, head, 200, metrics.contentType, await metrics.text());
    const report = path === '/healthz' ? probe.liveness() : readiness();
    return json(res, head, report.ok ? 200 : 503, report);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      logger.error({ err: error instanceof Error ? error.message : String(error), url: req.url }, 'health endpoint failed');
      if (!res.headersSent) json(res, false, 500, { error: 'internal error: see the agent log' });
      else res.destroy();
    });
  });
  // A probe answers at once; a client that trickles its request is dropped.
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    detach();
    probe.close();
    const e = error as NodeJS.ErrnoException;
    throw new LaunchError({
      code: 'health.listen_failed',
      stage: 'agent',
      message: `the health server cannot listen on ${o.host}:${o.port}: ${e.code ?? e.message}`,
      hint:
        e.code === 'EADDRINUSE'
          ? `another process uses port ${o.port}: pick another --health-port`
          : e.code === 'EACCES'
            ? `port ${o.port} needs privileges: use a port above 1023`
            : 'check --health-host names an address of this machine',
      cause: error,
    });
  }
  server.on('error', (error) => logger.error({ err: error.message }, 'health server error'));
  server.unref();

  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  logger.info({ url }, 'health server listening');
  for (const check of o.checks) runCheck(check);

  let closing: Promise<void> | undefined;
  return {
    url,
    port: address.port,
    metrics,
    liveness: () => probe.liveness(),
    readiness,
    close() {
      closing ??= new Promise<void>((resolve) => {
        stopChecks.abort();
        for (const timer of recheck) clearTimeout(timer);
        recheck.clear();
        detach();
        probe.close();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
