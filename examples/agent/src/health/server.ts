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
 * Serves `/healthz` (the agent loop turns), `/readyz` (registered and serving) and `/metrics`
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
  let detach: () => void;
  try {
    detach = metrics.observeAgent(o.agent, { ready: () => probe.readiness().ok, lastLoopAt: () => probe.lastLoopAt(), runners: o.runners });
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
    const report = path === '/healthz' ? probe.liveness() : probe.readiness();
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

  let closing: Promise<void> | undefined;
  return {
    url,
    port: address.port,
    metrics,
    liveness: () => probe.liveness(),
    readiness: () => probe.readiness(),
    close() {
      closing ??= new Promise<void>((resolve) => {
        detach();
        probe.close();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
