import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, TLSSocket } from 'node:tls';

/**
 * Lets the unchanged binary talk to a cloud's real host names (`storage.googleapis.com`,
 * `<account>.blob.core.windows.net`, `login.microsoftonline.com`) while every byte stays on
 * 127.0.0.1: the binary gets `HTTPS_PROXY` pointing at a loopback CONNECT proxy (the SDKs' own,
 * documented proxy support: gaxios and @azure/core-rest-pipeline read it) and `NODE_EXTRA_CA_CERTS`
 * naming a throw-away CA. The proxy tunnels only the host names it was given, each to a loopback
 * test server; any other CONNECT is refused with 403 and recorded in `refused`, so a test can assert
 * that nothing tried to leave the machine. TLS verification stays on in the binary: the servers
 * present a certificate for the real host name, signed by the test CA.
 */

/** A throw-away CA and one server certificate it signed for `names` (DNS), 127.0.0.1 and localhost. */
export interface FrontTls {
  /** The CA certificate (PEM); also written to `caPath` for `NODE_EXTRA_CA_CERTS`. */
  ca: string;
  caPath: string;
  cert: string;
  key: string;
  certPath: string;
  keyPath: string;
}

/** Makes the CA and certificate with `openssl` (EC P-256, one day) in `dir`. */
export function makeFrontTls(dir: string, names: string[]): FrontTls {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key');
  run(
    'req',
    '-x509',
    '-new',
    '-key',
    'ca.key',
    '-days',
    '1',
    '-subj',
    '/CN=launch e2e test CA',
    '-out',
    'ca.pem',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'server.key');
  run('req', '-new', '-key', 'server.key', '-subj', `/CN=${names[0] ?? '127.0.0.1'}`, '-out', 'server.csr');
  const san = [...names.map((n) => `DNS:${n}`), 'DNS:localhost', 'IP:127.0.0.1'].join(',');
  writeFileSync(join(dir, 'ext.cnf'), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n`);
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'ext.cnf', '-out', 'server.pem');
  rmSync(join(dir, 'ca.key'));
  const read = (f: string) => readFileSync(join(dir, f), 'utf8');
  return {
    ca: read('ca.pem'),
    caPath: join(dir, 'ca.pem'),
    cert: read('server.pem'),
    key: read('server.key'),
    certPath: join(dir, 'server.pem'),
    keyPath: join(dir, 'server.key'),
  };
}

/** Where a host name's CONNECTs go: a loopback port, with TLS passed through or ended by the proxy. */
export interface FrontRoute {
  port: number;
  /**
   * `passthrough` (default): the tunnel goes to the port as is; the server there speaks TLS with the
   * front's certificate. `terminate`: the proxy speaks TLS with the front's certificate and forwards
   * plain HTTP to the port (for test servers that serve only HTTP).
   */
  tls?: 'passthrough' | 'terminate';
}

export interface CloudFront {
  tls: FrontTls;
  /** `http://127.0.0.1:<port>` */
  proxyUrl: string;
  /** The variables the binary needs: HTTPS_PROXY, NO_PROXY (loopback), NODE_EXTRA_CA_CERTS. */
  env: Record<string, string>;
  /** `host:port` of every CONNECT that was refused (not a routed host). */
  refused: string[];
  /** `host:port` of every CONNECT that was tunnelled. */
  tunnelled: string[];
  /** Adds or replaces a route (host name without port; the port asked for must be 443). */
  route(host: string, route: FrontRoute): void;
  close(): Promise<void>;
}

/** Starts the CONNECT proxy on 127.0.0.1 with a certificate for every host name in `names`. */
export async function startCloudFront(names: string[], routes: Record<string, FrontRoute> = {}): Promise<CloudFront> {
  const dir = mkdtempSync(join(tmpdir(), 'launch-cloud-front-'));
  const tls = makeFrontTls(dir, names);
  const table = new Map(Object.entries(routes));
  const refused: string[] = [];
  const tunnelled: string[] = [];
  const sockets = new Set<Socket>();
  const context = createSecureContext({ cert: tls.cert, key: tls.key });
  const track = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
  };

  const server = createServer((_req, res) => {
    // Plain-HTTP proxying (an http:// URL through the proxy) is not offered: nothing here needs it.
    res.writeHead(405, { 'content-type': 'text/plain' });
    res.end('only CONNECT is served\n');
  });
  server.on('connect', (req: IncomingMessage, client: Socket, head: Buffer) => {
    track(client);
    const target = req.url ?? '';
    const m = /^([^:]+):(\d+)$/.exec(target);
    const route = m && m[2] === '443' ? table.get(m[1]!.toLowerCase()) : undefined;
    if (!route) {
      refused.push(target);
      client.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    tunnelled.push(target);
    const upstream = connect({ host: '127.0.0.1', port: route.port });
    track(upstream);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.once('connect', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) client.unshift(head);
      if ((route.tls ?? 'passthrough') === 'passthrough') {
        client.pipe(upstream).pipe(client);
        return;
      }
      const secure = new TLSSocket(client, { isServer: true, secureContext: context });
      track(secure);
      secure.on('error', () => upstream.destroy());
      secure.pipe(upstream).pipe(secure);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxyUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    tls,
    proxyUrl,
    env: { HTTPS_PROXY: proxyUrl, https_proxy: proxyUrl, NO_PROXY: '127.0.0.1,localhost', no_proxy: '127.0.0.1,localhost', NODE_EXTRA_CA_CERTS: tls.caPath },
    refused,
    tunnelled,
    route(host, r) {
      table.set(host.toLowerCase(), r);
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A plain-TCP listener on 127.0.0.1 that opens TLS to `port` trusting only `ca`: lets a client in the
 * test process that has no CA option (an SDK with its own agents) reach a TLS-only test server as
 * `http://127.0.0.1:<listener>`. Returns that port and a close function.
 */
export async function startTlsForwarder(port: number, ca: string): Promise<{ port: number; close(): Promise<void> }> {
  const { connect: tlsConnect } = await import('node:tls');
  const { createServer: createTcpServer } = await import('node:net');
  const sockets = new Set<Socket>();
  const server = createTcpServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    const upstream = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
    sockets.add(upstream);
    upstream.on('close', () => sockets.delete(upstream));
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
