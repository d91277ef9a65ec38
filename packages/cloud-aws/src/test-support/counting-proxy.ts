import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';

export interface CountingProxy {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  /** Requests seen, by `X-Amz-Target` (JSON protocols) or `Action` (query protocol), else `METHOD path`. */
  counts: Map<string, number>;
  count(operation: string): number;
  close(): Promise<void>;
}

/** A loopback HTTP proxy in front of `target` that counts the AWS operations passing through it. */
export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const to = new URL(target);
  const counts = new Map<string, number>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const amzTarget = req.headers['x-amz-target'];
      const action = /(?:^|&)Action=([^&]+)/.exec(body.toString('utf8'))?.[1];
      const op = typeof amzTarget === 'string' ? amzTarget.split('.').pop()! : (action ?? `${req.method} ${req.url}`);
      counts.set(op, (counts.get(op) ?? 0) + 1);
      const upstream = request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      upstream.on('error', () => {
        res.writeHead(502);
        res.end();
      });
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts,
    count: (op) => counts.get(op) ?? 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
