import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { AgentStatus } from '../../status.js';
import { errno, listDir, pidAlive, readLimited, writeAtomic } from './files.js';
import { type Layout, encodeName, randomId } from './layout.js';
import type { AgentRecord } from './types.js';

/** Agent status files and stop requests: small files the CLI reads and writes. */
export interface AgentFiles {
  create(info: { hostname: string; queues: string[]; version?: string }): Promise<AgentRecord>;
  setStatus(agentId: string, status: AgentStatus): Promise<void>;
  list(): Promise<AgentRecord[]>;
  requestAgentStop(agentId: string): Promise<void>;
  agentStopRequested(agentId: string): Promise<boolean>;
  requestStop(idOrRunId: string): Promise<void>;
  stopRequested(ids: string[]): Promise<boolean>;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if (errno(error) === 'ENOENT') return false;
    throw error;
  }
}

/** Host names become part of agent ids, which the Kubernetes runner uses in labels: keep them label-safe. */
function labelSafe(host: string): string {
  const cleaned = host
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return (cleaned || 'host').slice(0, 40).replace(/-+$/, '');
}

export function createAgentFiles(ctx: { paths: Layout; ensureDir: (dir: string) => Promise<void>; now: () => number; hostname: string }): AgentFiles {
  const { paths } = ctx;
  const known = new Map<string, AgentRecord>();
  const file = (id: string) => join(paths.agents, `${encodeName(id)}.json`);
  const iso = () => new Date(ctx.now()).toISOString();

  const write = async (record: AgentRecord) => {
    await Promise.all([ctx.ensureDir(paths.agents), ctx.ensureDir(paths.tmp)]);
    await writeAtomic(paths.tmp, file(record.id), JSON.stringify(record), { fsync: false });
  };

  const read = async (path: string): Promise<AgentRecord | undefined> => {
    const r = await readLimited(path, 1_000_000);
    if (!r.ok) return undefined;
    try {
      const value = JSON.parse(r.text) as AgentRecord;
      return typeof value === 'object' && value !== null && typeof value.id === 'string' ? value : undefined;
    } catch {
      return undefined;
    }
  };

  const touch = async (path: string, dir: string) => {
    await Promise.all([ctx.ensureDir(dir), ctx.ensureDir(paths.tmp)]);
    await writeAtomic(paths.tmp, path, JSON.stringify({ requestedAt: iso() }), { fsync: false });
  };

  return {
    async create(info) {
      const id = `${labelSafe(info.hostname)}-${randomId(8)}`;
      const at = iso();
      const record: AgentRecord = {
        id,
        name: id,
        hostname: info.hostname,
        pid: process.pid,
        status: 'POLLING',
        queues: info.queues,
        ...(info.version ? { version: info.version } : {}),
        registeredAt: at,
        updatedAt: at,
      };
      known.set(id, record);
      await write(record);
      return record;
    },
    async setStatus(agentId, status) {
      const base = known.get(agentId) ??
        (await read(file(agentId))) ?? {
          id: agentId,
          name: agentId,
          hostname: ctx.hostname,
          pid: process.pid,
          status,
          queues: [],
          registeredAt: iso(),
          updatedAt: iso(),
        };
      const record: AgentRecord = { ...base, status, pid: process.pid, hostname: ctx.hostname, updatedAt: iso() };
      known.set(agentId, record);
      await write(record);
    },
    async list() {
      const names = (await listDir(paths.agents)).filter((n) => n.endsWith('.json'));
      const records = await Promise.all(names.map((n) => read(join(paths.agents, n))));
      return records
        .filter((r): r is AgentRecord => r !== undefined)
        .map((r) => (r.hostname === ctx.hostname ? { ...r, alive: pidAlive(r.pid) } : r))
        .sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
    },
    requestAgentStop: (agentId) => touch(join(paths.agents, `${encodeName(agentId)}.stop`), paths.agents),
    agentStopRequested: (agentId) => exists(join(paths.agents, `${encodeName(agentId)}.stop`)),
    requestStop: (idOrRunId) => touch(join(paths.stops, encodeName(idOrRunId)), paths.stops),
    async stopRequested(ids) {
      for (const id of ids) if (id && (await exists(join(paths.stops, encodeName(id))))) return true;
      return false;
    },
  };
}
