import { request } from 'node:https';

export interface HttpsAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * One HTTPS request with Node's own client: `ca` (PEM) replaces the trusted roots when given, TLS
 * checks stay on. The answer body is cut at `maxBytes` (default 1 MiB); a hostile server cannot
 * make us buffer more. Errors are Node's (`ECONNREFUSED`, `ETIMEDOUT`, `AbortError`, …).
 */
export function httpsRequest(
  url: URL,
  options: { method: string; headers?: Record<string, string>; body?: string; ca?: string; signal?: AbortSignal; timeoutMs?: number; maxBytes?: number },
): Promise<HttpsAnswer> {
  const maxBytes = options.maxBytes ?? 1024 * 1024;
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method,
        headers: { ...(options.body !== undefined ? { 'content-length': String(Buffer.byteLength(options.body)) } : {}), ...options.headers },
        ...(options.ca ? { ca: options.ca } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        timeout: options.timeoutMs ?? 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size < maxBytes) chunks.push(chunk.subarray(0, maxBytes - size));
          size += chunk.length;
        });
        res.once('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.once('error', reject);
      },
    );
    req.once('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${options.timeoutMs ?? 30_000} ms`), { code: 'ETIMEDOUT' })));
    req.once('error', reject);
    req.end(options.body);
  });
}
