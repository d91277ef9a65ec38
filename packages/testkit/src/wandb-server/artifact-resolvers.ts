import { GraphQLError, GraphQLScalarType, Kind } from 'graphql';
import type { ArtifactFileRecord, ArtifactStore, ArtifactVersionRecord } from './artifacts.js';
import type { WandbContext } from './resolvers.js';
import type { WandbState } from './state.js';

/** Per-request context of the artifact resolvers: the user and the server's own URL (for signed URLs). */
export interface ArtifactContext extends WandbContext {
  baseUrl: string;
}

/** W&B's Int64: sizes beyond 2^31. */
const Int64 = new GraphQLScalarType({
  name: 'Int64',
  serialize: (v) => Number(v),
  parseValue: (v) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new GraphQLError('Int64 must be an integer');
    return v;
  },
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.INT) throw new GraphQLError('Int64 must be an integer');
    return Number(ast.value);
  },
});

const FILES_PAGE_DEFAULT = 50;
const FILES_PAGE_MAX = 1000;
const relay = (type: string, key: string) => Buffer.from(`${type}:${key}`).toString('base64');

interface SequenceView {
  entity: string;
  project: string;
  name: string;
}
interface MembershipView {
  record: ArtifactVersionRecord;
}

/** The GraphQL resolvers of W&B's artifact API slice (see README.md), over the artifact store. */
export function createArtifactResolvers(state: WandbState, store: ArtifactStore) {
  const sequenceOf = (r: ArtifactVersionRecord): SequenceView => ({ entity: r.entity, project: r.project, name: r.name });
  const projectView = (entity: string, name: string) => ({ id: relay('Project', `${entity}/${name}`), name, entityName: entity });
  const aliasViews = (r: ArtifactVersionRecord) =>
    store.aliasesOf(r).map((alias) => ({ id: relay('ArtifactAlias', `${r.id}/${alias}`), alias, collection: sequenceOf(r) }));
  const fileView = (r: ArtifactVersionRecord, f: ArtifactFileRecord, baseUrl: string) => ({
    id: relay('File', `${r.id}/${f.path}`),
    name: f.path,
    directUrl: `${baseUrl}${store.signedPath('file', r.id, f.path)}`,
    sizeBytes: f.size,
    md5: f.digest,
  });

  return {
    Int64,
    Query: {
      artifact: (_: unknown, { id }: { id: string }, { user }: ArtifactContext) => {
        const r = store.versions.get(id);
        return r && state.canAccess(user, r.entity) ? r : null;
      },
    },
    Project: {
      entity: (p: { entityName: string }, _: unknown, { user }: ArtifactContext) => state.entity(user, p.entityName),
      artifactCollectionMembership: (p: { name: string; entityName: string }, { name }: { name: string }): MembershipView | null => {
        const r = store.byName(p.entityName, p.name, name);
        return r ? { record: r } : null;
      },
      artifactCollection: (p: { name: string; entityName: string }, { name }: { name: string }): SequenceView | null =>
        store.versionsOf(p.entityName, p.name, name).length > 0 ? { entity: p.entityName, project: p.name, name } : null,
    },
    ArtifactCollection: {
      __resolveType: () => 'ArtifactSequence',
    },
    ArtifactSequence: {
      id: (s: SequenceView) => relay('ArtifactSequence', `${s.entity}/${s.project}/${s.name}`),
      project: (s: SequenceView) => projectView(s.entity, s.project),
      artifactMembership: (s: SequenceView, { aliasName }: { aliasName: string }): MembershipView | null => {
        const r = store.byName(s.entity, s.project, `${s.name}:${aliasName}`);
        return r ? { record: r } : null;
      },
    },
    ArtifactAlias: {
      artifactCollection: (a: { collection: SequenceView }) => a.collection,
    },
    ArtifactCollectionMembership: {
      id: (m: MembershipView) => relay('ArtifactCollectionMembership', m.record.id),
      versionIndex: (m: MembershipView) => m.record.versionIndex,
      aliases: (m: MembershipView) => aliasViews(m.record),
      artifactCollection: (m: MembershipView) => sequenceOf(m.record),
      artifact: (m: MembershipView) => m.record,
      files: (m: MembershipView, args: { after?: string | null; first?: number | null; names?: string[] | null }, { baseUrl }: ArtifactContext) => {
        if (args.first != null && args.first < 0) throw new GraphQLError(`first must not be negative, got ${args.first}`);
        const first = Math.min(args.first ?? FILES_PAGE_DEFAULT, FILES_PAGE_MAX);
        let all = [...m.record.files.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
        if (args.names) all = all.filter((f) => args.names!.includes(f.path));
        let start = 0;
        if (args.after != null) {
          const after = Buffer.from(args.after, 'base64').toString('utf8');
          if (!after.startsWith('FileCursor:')) throw new GraphQLError(`after: ${JSON.stringify(args.after)} is not a cursor this server gave out`);
          const name = after.slice('FileCursor:'.length);
          start = all.findIndex((f) => f.path > name);
          if (start < 0) start = all.length;
        }
        const page = all.slice(start, start + first);
        const cursor = (f: ArtifactFileRecord) => Buffer.from(`FileCursor:${f.path}`).toString('base64');
        return {
          pageInfo: {
            hasNextPage: start + page.length < all.length,
            hasPreviousPage: start > 0,
            startCursor: page[0] ? cursor(page[0]) : null,
            endCursor: page.length > 0 ? cursor(page[page.length - 1]!) : null,
          },
          edges: page.map((f) => ({ cursor: cursor(f), node: fileView(m.record, f, baseUrl) })),
        };
      },
    },
    Artifact: {
      fileCount: (r: ArtifactVersionRecord) => r.files.size,
      metadata: (r: ArtifactVersionRecord) => JSON.stringify(r.metadata),
      description: () => null,
      artifactType: (r: ArtifactVersionRecord) => ({ id: relay('ArtifactType', `${r.entity}/${r.project}/${r.type}`), name: r.type }),
      artifactSequence: (r: ArtifactVersionRecord) => sequenceOf(r),
      aliases: (r: ArtifactVersionRecord) => aliasViews(r),
      currentManifest: (r: ArtifactVersionRecord, _: unknown, { baseUrl }: ArtifactContext) => ({
        id: relay('ArtifactManifest', r.id),
        file: {
          id: relay('File', `${r.id}/wandb_manifest.json`),
          name: 'wandb_manifest.json',
          directUrl: `${baseUrl}${store.signedPath('manifest', r.id)}`,
          sizeBytes: Buffer.byteLength(r.manifestJson),
          md5: null,
        },
      }),
    },
  };
}
