import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';

/**
 * The artifact half of the W&B test server's model: artifact collections (W&B's "sequences") with
 * numbered versions (`v0`, `v1`, …) and aliases (`latest` always moves to the newest), each version
 * with a v1 manifest (`contents` keyed by path, base64 MD5 `digest`, `size`) and files served from
 * signed URLs. Tests publish artifacts and jobs through it and steer downloads (faults) and deletion.
 */

/** A file's content: bytes, UTF-8 text, or a file on disk (streamed; for large artifacts). */
export type ArtifactFileInit = Buffer | string | { path: string };

export interface PublishArtifactInit {
  entity: string;
  project: string;
  /** Collection name (`train-job`, `source-code-abc`). */
  name: string;
  /** Artifact type (`job`, `code`, `dataset` …). */
  type: string;
  /** Path in the artifact → content. */
  files: Record<string, ArtifactFileInit>;
  /** Aliases besides `latest` (which always moves to the newest version) and `vN`. */
  aliases?: string[];
  metadata?: Record<string, unknown>;
}

export interface ArtifactFileRecord {
  /** Path in the artifact. */
  path: string;
  /** Base64 MD5 of the content, as W&B's manifests carry it. */
  digest: string;
  size: number;
  content: Buffer | { path: string };
}

export interface ArtifactVersionRecord {
  /** Relay-style id (base64 of `Artifact:n`). */
  id: string;
  entity: string;
  project: string;
  /** Collection name. */
  name: string;
  type: string;
  versionIndex: number;
  state: 'COMMITTED' | 'DELETED';
  /** W&B's manifest digest: hex MD5 over `wandb-artifact-manifest-v1\n` and `path:digest\n` per entry, sorted by path. */
  digest: string;
  size: number;
  files: Map<string, ArtifactFileRecord>;
  /** The manifest JSON served at the manifest's signed URL. Tests may replace it (a hostile server). */
  manifestJson: string;
  metadata: Record<string, unknown>;
  createdAt: number;
  /** Qualified name `entity/project/name:vN`. */
  qualifiedName: string;
}

/**
 * A download fault on signed-URL file downloads (not GraphQL): hits the first `times` downloads
 * (default 1) of files whose artifact path is `path` (any file when unset) of artifact `artifactId`
 * (any when unset).
 * - `cut`: sends the headers and about half the body, then destroys the connection (mid-stream failure).
 * - `corrupt`: sends the full length with one byte changed (a digest mismatch at the client).
 * - a number: answers that HTTP status without a body.
 */
export interface DownloadFault {
  kind: 'cut' | 'corrupt' | number;
  path?: string;
  artifactId?: string;
  times?: number;
}

/** One signed-URL download the server saw. */
export interface RecordedDownload {
  at: number;
  /** `file` or `manifest`. */
  kind: 'file' | 'manifest';
  artifactId: string;
  /** The file's path in the artifact (files only). */
  path?: string;
  status: number;
  fault?: DownloadFault['kind'];
  /** Whether the request carried an Authorization header (signed URLs need none; W&B's client sends none). */
  authorized: boolean;
}

const MANIFEST_HEADER = 'wandb-artifact-manifest-v1\n';

/** W&B's manifest digest. */
export function manifestDigest(entries: Iterable<{ path: string; digest: string }>): string {
  const h = createHash('md5').update(MANIFEST_HEADER);
  for (const e of [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) h.update(`${e.path}:${e.digest}\n`);
  return h.digest('hex');
}

/** Base64 MD5 of a file on disk, streamed. */
async function md5OfFile(path: string): Promise<string> {
  const h = createHash('md5');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('base64');
}

export function createArtifactStore(options: { now?: () => number; changed?: () => void } = {}) {
  const now = options.now ?? Date.now;
  const changed = options.changed ?? (() => undefined);
  const secret = randomBytes(32);
  let seq = 0;
  const versions = new Map<string, ArtifactVersionRecord>();
  /** `entity/project/name` → versions in order. */
  const collections = new Map<string, ArtifactVersionRecord[]>();
  /** `entity/project/name` → alias → version id. */
  const aliases = new Map<string, Map<string, string>>();
  const faults: Array<DownloadFault & { left: number }> = [];
  const downloads: RecordedDownload[] = [];

  const key = (entity: string, project: string, name: string) => `${entity}/${project}/${name}`;
  const sign = (path: string) => createHmac('sha256', secret).update(path).digest('hex');

  async function publish(init: PublishArtifactInit): Promise<ArtifactVersionRecord> {
    if (!/^[\w.-]+$/.test(init.name)) throw new Error(`artifact name ${JSON.stringify(init.name)} must be letters, digits, '-', '_' or '.'`);
    const files = new Map<string, ArtifactFileRecord>();
    for (const [path, content] of Object.entries(init.files)) {
      if (typeof content === 'string' || Buffer.isBuffer(content)) {
        const bytes = Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8');
        files.set(path, { path, digest: createHash('md5').update(bytes).digest('base64'), size: bytes.length, content: bytes });
      } else {
        files.set(path, { path, digest: await md5OfFile(content.path), size: statSync(content.path).size, content: { path: content.path } });
      }
    }
    const k = key(init.entity, init.project, init.name);
    const list = collections.get(k) ?? [];
    collections.set(k, list);
    const existingType = list[0]?.type;
    if (existingType && existingType !== init.type) throw new Error(`artifact ${k} has type ${existingType}, not ${init.type}`);
    const versionIndex = list.length;
    const id = Buffer.from(`Artifact:${++seq}`).toString('base64');
    const contents: Record<string, { digest: string; size: number; birthArtifactID: string }> = {};
    for (const f of files.values()) contents[f.path] = { digest: f.digest, size: f.size, birthArtifactID: id };
    const record: ArtifactVersionRecord = {
      id,
      entity: init.entity,
      project: init.project,
      name: init.name,
      type: init.type,
      versionIndex,
      state: 'COMMITTED',
      digest: manifestDigest(files.values()),
      size: [...files.values()].reduce((n, f) => n + f.size, 0),
      files,
      manifestJson: JSON.stringify({ version: 1, storagePolicy: 'wandb-storage-policy-v1', storagePolicyConfig: { storageLayout: 'V2' }, contents }),
      metadata: init.metadata ?? {},
      createdAt: now(),
      qualifiedName: `${k}:v${versionIndex}`,
    };
    list.push(record);
    versions.set(id, record);
    const names = aliases.get(k) ?? new Map<string, string>();
    aliases.set(k, names);
    for (const alias of ['latest', ...(init.aliases ?? [])]) names.set(alias, id);
    changed();
    return record;
  }

  function aliasesOf(record: ArtifactVersionRecord): string[] {
    const names = aliases.get(key(record.entity, record.project, record.name));
    return [...(names ?? new Map<string, string>())].filter(([, id]) => id === record.id).map(([alias]) => alias);
  }

  /** A version by `name:alias` or `name:vN` (`name` alone means `name:latest`), as `artifactCollectionMembership(name:)` finds it. */
  function byName(entity: string, project: string, nameWithAlias: string): ArtifactVersionRecord | null {
    const colon = nameWithAlias.lastIndexOf(':');
    const name = colon < 0 ? nameWithAlias : nameWithAlias.slice(0, colon);
    const alias = colon < 0 ? 'latest' : nameWithAlias.slice(colon + 1);
    const list = collections.get(key(entity, project, name));
    if (!list) return null;
    const v = /^v(\d+)$/.exec(alias);
    if (v) return list[Number(v[1])] ?? null;
    const id = aliases.get(key(entity, project, name))?.get(alias);
    return id ? (versions.get(id) ?? null) : null;
  }

  /**
   * Marks a version deleted, as W&B's `deleteArtifact` does: its aliases are dropped (so `name:latest`
   * no longer finds it), while `artifact(id:)` and `name:vN` still answer with `state: DELETED`.
   */
  function remove(id: string): void {
    const record = versions.get(id);
    if (!record) throw new Error(`no artifact ${id}`);
    record.state = 'DELETED';
    const names = aliases.get(key(record.entity, record.project, record.name));
    for (const [alias, target] of [...(names ?? [])]) if (target === id) names!.delete(alias);
    changed();
  }

  function signedPath(kind: 'file' | 'manifest', artifactId: string, path?: string): string {
    const tail =
      kind === 'manifest'
        ? `manifest/${encodeURIComponent(artifactId)}`
        : `files/${encodeURIComponent(artifactId)}/${path!.split('/').map(encodeURIComponent).join('/')}`;
    const p = `/storage/${tail}`;
    return `${p}?sig=${sign(p)}`;
  }

  function takeFault(artifactId: string, path: string | undefined): DownloadFault | undefined {
    const rule = faults.find((f) => f.left > 0 && (f.artifactId === undefined || f.artifactId === artifactId) && (f.path === undefined || f.path === path));
    if (!rule) return undefined;
    rule.left -= 1;
    return rule;
  }

  return {
    versions,
    downloads,
    publish,
    byName,
    remove,
    aliasesOf,
    /** Every version of a collection, oldest first. */
    versionsOf(entity: string, project: string, name: string): ArtifactVersionRecord[] {
      return [...(collections.get(key(entity, project, name)) ?? [])];
    },
    /** Points an alias at a version (moving it from another). */
    setAlias(id: string, alias: string): void {
      const record = versions.get(id);
      if (!record) throw new Error(`no artifact ${id}`);
      aliases.get(key(record.entity, record.project, record.name))!.set(alias, id);
      changed();
    },
    /** The URL path (with its signature) of the manifest or of one file; prefix it with the server's URL. */
    signedPath,
    /** Checks a signed path; returns what it names or undefined. */
    verify(pathWithQuery: string): { kind: 'file' | 'manifest'; record: ArtifactVersionRecord; file?: ArtifactFileRecord } | undefined {
      const [path, query = ''] = pathWithQuery.split('?', 2) as [string, string?];
      const sig = new URLSearchParams(query).get('sig') ?? '';
      const expected = Buffer.from(sign(path));
      const given = Buffer.from(sig);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
      const m = /^\/storage\/(manifest|files)\/([^/]+)(?:\/(.+))?$/.exec(path);
      if (!m) return undefined;
      const record = versions.get(decodeURIComponent(m[2]!));
      if (!record) return undefined;
      if (m[1] === 'manifest') return { kind: 'manifest', record };
      const filePath = m[3]!.split('/').map(decodeURIComponent).join('/');
      const file = record.files.get(filePath);
      return file ? { kind: 'file', record, file } : undefined;
    },
    addDownloadFault(fault: DownloadFault): void {
      faults.push({ ...fault, left: fault.times ?? 1 });
    },
    takeFault,
    /** Download faults not yet used up. */
    pendingDownloadFaults(): number {
      return faults.reduce((n, f) => n + f.left, 0);
    },
    /** File downloads (manifests not counted) recorded so far, optionally of one artifact. */
    countFileDownloads(artifactId?: string): number {
      return downloads.filter((d) => d.kind === 'file' && (artifactId === undefined || d.artifactId === artifactId)).length;
    },
  };
}

export type ArtifactStore = ReturnType<typeof createArtifactStore>;
