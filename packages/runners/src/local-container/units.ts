/**
 * Parsers for the value syntaxes of `docker run` flags (the Docker CLI's `units` and `opts` packages),
 * so a queue written for W&B's `docker run` means the same thing here. Each returns undefined when
 * the text does not parse; the caller names the field and what was expected.
 */

const SIZE = /^(\d+(?:\.\d+)?)\s*([kmgtp])?i?b?$/i;
const MULTIPLIER: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** `512m`, `1g`, `1.5GiB`, `1024` (bytes, binary multipliers as `docker run -m`), or a number of bytes. */
export function parseBytes(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = SIZE.exec(value.trim());
  if (!m) return undefined;
  const bytes = Math.floor(Number(m[1]) * MULTIPLIER[(m[2] ?? '').toLowerCase()]!);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** An integer, given as a number or a decimal string (macros fill values as strings). */
export function parseInteger(value: unknown, min = -Infinity): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : NaN;
  return Number.isSafeInteger(n) && n >= min ? n : undefined;
}

/** `--cpus 1.5` as nano-CPUs. */
export function parseNanoCpus(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : NaN;
  return Number.isFinite(n) && n > 0 ? Math.round(n * 1e9) : undefined;
}

/** `true`/`false`, also as the strings a template variable yields. */
export function parseBoolean(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'True') return true;
  if (value === 'false' || value === 'False') return false;
  return undefined;
}

export interface Ulimit {
  Name: string;
  Soft: number;
  Hard: number;
}

/** `nofile=1024:2048` or `nproc=512` (soft = hard), as `docker run --ulimit`. */
export function parseUlimit(value: unknown): Ulimit | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(value.trim());
  if (!m) return undefined;
  const soft = Number(m[2]);
  const hard = m[3] === undefined ? soft : Number(m[3]);
  return { Name: m[1]!, Soft: soft, Hard: hard };
}

export interface GpuRequest {
  Driver: string;
  Count: number;
  DeviceIDs: string[] | null;
  Capabilities: string[][];
}

/**
 * `--gpus` values: `all`, a count (`2`), or comma-separated `key=value` pairs with keys `count`,
 * `device` (ids, comma-separated after `device=`), `driver`, `capabilities`.
 */
export function parseGpus(value: unknown): GpuRequest | undefined {
  const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value.trim().replace(/^"(.*)"$/, '$1') : undefined;
  if (!text) return undefined;
  const request: GpuRequest = { Driver: '', Count: 0, DeviceIDs: null, Capabilities: [['gpu']] };
  if (text === 'all') return { ...request, Count: -1 };
  if (/^\d+$/.test(text)) return Number(text) > 0 ? { ...request, Count: Number(text) } : undefined;
  // `device=0,1` keeps its commas: everything after `device=` up to the next `key=` belongs to it.
  const parts = text.split(',');
  let key: string | undefined;
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq > 0) {
      key = part.slice(0, eq);
      const v = part.slice(eq + 1);
      if (key === 'count') {
        if (v === 'all') request.Count = -1;
        else if (/^\d+$/.test(v) && Number(v) > 0) request.Count = Number(v);
        else return undefined;
      } else if (key === 'device') request.DeviceIDs = v ? [v] : [];
      else if (key === 'driver') request.Driver = v;
      else if (key === 'capabilities') request.Capabilities = [[v]];
      else return undefined;
    } else if (key === 'device' && request.DeviceIDs && part) request.DeviceIDs.push(part);
    else if (key === 'capabilities' && part) request.Capabilities[0]!.push(part);
    else return undefined;
  }
  if (request.DeviceIDs && request.Count !== 0) return undefined; // docker refuses both
  return request;
}

export interface PortSpec {
  /** `80/tcp` */
  containerPort: string;
  hostIp: string;
  hostPort: string;
}

/** `8080:80`, `127.0.0.1:8080:80/tcp`, `80` (a random host port): single ports, as `docker run -p`. */
export function parsePort(value: unknown): PortSpec | undefined {
  const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value.trim() : undefined;
  if (!text) return undefined;
  const [spec, proto = 'tcp', ...extra] = text.split('/');
  if (extra.length > 0 || !['tcp', 'udp', 'sctp'].includes(proto)) return undefined;
  const parts = spec!.split(':');
  if (parts.length > 3) return undefined;
  const containerPort = parts.at(-1)!;
  const hostPort = parts.length >= 2 ? parts.at(-2)! : '';
  const hostIp = parts.length === 3 ? parts[0]! : '';
  const port = (p: string) => /^\d+$/.test(p) && Number(p) > 0 && Number(p) < 65536;
  if (!port(containerPort) || (hostPort !== '' && !port(hostPort))) return undefined;
  if (hostIp !== '' && !/^[0-9.]+$/.test(hostIp)) return undefined;
  return { containerPort: `${Number(containerPort)}/${proto}`, hostIp, hostPort: hostPort === '' ? '' : String(Number(hostPort)) };
}
