import net from 'node:net';

export interface LoopbackGuard {
  /** Every non-loopback destination a connection was attempted to (and refused). */
  readonly violations: string[];
  restore(): void;
}

function isLoopback(host: string | undefined): boolean {
  if (host === undefined || host === '') return true; // net defaults to localhost
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Refuses every TCP connection this process tries to open to anything but a loopback address (so a
 * test can never reach a real cloud service, nor a cloud metadata service), recording each attempt.
 * The connection fails with ECONNREFUSED-like error `LOOPBACK_GUARD`; a test asserts `violations` is empty.
 */
export function installLoopbackGuard(): LoopbackGuard {
  const violations: string[] = [];
  const original = net.Socket.prototype.connect;
  const patched = function (this: net.Socket, ...args: unknown[]) {
    const first = args[0];
    let host: string | undefined;
    let port: unknown;
    if (typeof first === 'object' && first !== null) {
      const o = first as { host?: string; port?: unknown; path?: string };
      if (o.path !== undefined) return (original as (...a: unknown[]) => net.Socket).apply(this, args);
      host = o.host;
      port = o.port;
    } else if (Array.isArray(first)) {
      const o = (first[0] ?? {}) as { host?: string; port?: unknown; path?: string };
      if (o.path !== undefined) return (original as (...a: unknown[]) => net.Socket).apply(this, args);
      host = o.host;
      port = o.port;
    } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
      port = first;
      host = typeof args[1] === 'string' ? args[1] : undefined;
    } else {
      return (original as (...a: unknown[]) => net.Socket).apply(this, args); // a Unix socket path
    }
    if (!isLoopback(host)) {
      violations.push(`${host}:${String(port)}`);
      const error = Object.assign(new Error(`loopback guard: refused a connection to ${host}:${String(port)}`), { code: 'LOOPBACK_GUARD' });
      process.nextTick(() => this.destroy(error));
      return this;
    }
    return (original as (...a: unknown[]) => net.Socket).apply(this, args);
  };
  net.Socket.prototype.connect = patched as typeof net.Socket.prototype.connect;
  return {
    violations,
    restore() {
      net.Socket.prototype.connect = original;
    },
  };
}
