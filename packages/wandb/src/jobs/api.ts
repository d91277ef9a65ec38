import { type Logger, type Redactor } from '@launch/core';
import { zodIssues } from '@launch/core/internal';
import { GraphQLClient } from 'graphql-request';
import type { Dispatcher } from 'undici';
import { z } from 'zod';
import { badResponse, toWandbError } from '../errors.js';
import type { ResolvedRetry } from '../retry.js';
import { createRetryingFetch } from '../transport.js';
import * as q from './queries.js';

/** One artifact version as the artifact API describes it. */
export interface ArtifactVersion {
  id: string;
  entity: string;
  project: string;
  /** Collection (sequence) name. */
  collection: string;
  versionIndex: number;
  /** `vN`. */
  version: string;
  /** `COMMITTED`, `DELETED`, `PENDING` … as W&B names them. */
  state: string;
  /** W&B's manifest digest (hex MD5 over the entries). */
  digest: string;
  size: number;
  fileCount: number;
  /** Artifact type: `job`, `code` … */
  type: string;
  /** `entity/project/collection:vN`. */
  qualifiedName: string;
}

export interface ArtifactApi {
  /** A version by `name:alias` or `name:vN`, or null when the project or the version does not exist for this key. */
  versionByName(entity: string, project: string, name: string, signal?: AbortSignal): Promise<ArtifactVersion | null>;
  /** A version by id, or null. */
  versionById(id: string, signal?: AbortSignal): Promise<ArtifactVersion | null>;
  /** The signed URL of the version's manifest. */
  manifestUrl(version: ArtifactVersion, signal?: AbortSignal): Promise<string>;
  /** Path → signed URL of every file of the version (all pages). */
  fileUrls(version: ArtifactVersion, signal?: AbortSignal): Promise<Map<string, string>>;
}

export interface ArtifactApiOptions {
  baseUrl: string;
  /** `Basic …` header value; never logged. */
  authorization: string;
  keyOrigin: string;
  dispatcher: Dispatcher;
  retry: ResolvedRetry;
  timeoutMs: number;
  logger: Logger;
  redactor: Redactor;
  closed: AbortSignal;
}

const id = z.union([z.string(), z.number()]).transform(String);
const int = z.union([z.number(), z.string().regex(/^\d+$/)]).transform(Number);

const artifactSchema = z.object({
  id,
  state: z.string(),
  digest: z.string().min(1),
  size: int.nullish(),
  fileCount: int.nullish(),
  versionIndex: z.number().int().min(0).nullish(),
  artifactType: z.object({ name: z.string() }),
  artifactSequence: z.object({
    name: z.string().min(1),
    project: z.object({ name: z.string().min(1), entity: z.object({ name: z.string().min(1) }) }).nullish(),
  }),
});

/** Files fetched per page of `GetArtifactMembershipFileUrls`. */
const FILES_PER_PAGE = 1000;

export function createArtifactApi(options: ArtifactApiOptions): ArtifactApi {
  const { baseUrl, redactor } = options;
  const gql = new GraphQLClient(`${baseUrl}/graphql`, {
    fetch: createRetryingFetch({
      dispatcher: options.dispatcher,
      retry: options.retry,
      timeoutMs: options.timeoutMs,
      logger: options.logger,
      redactor,
      closed: options.closed,
    }),
    headers: { authorization: options.authorization, 'user-agent': 'launch-agent (@launch/wandb)' },
  });

  async function call<S extends z.ZodTypeAny>(
    operation: string,
    document: string,
    variables: Record<string, unknown>,
    schema: S,
    signal?: AbortSignal,
  ): Promise<z.output<S>> {
    let data: unknown;
    try {
      data = await gql.request({ document, variables, ...(signal ? { signal } : {}) });
    } catch (error) {
      throw toWandbError(error, { operation, baseUrl, keyOrigin: options.keyOrigin, redactor });
    }
    const parsed = schema.safeParse(data);
    if (!parsed.success) {
      const issue = zodIssues(parsed.error, data)[0];
      throw badResponse(operation, issue ? `${issue.path || '(root)'}: ${issue.message}` : 'wrong shape');
    }
    return parsed.data;
  }

  function toVersion(
    a: z.output<typeof artifactSchema>,
    where?: { entity: string; project: string; collection: string; versionIndex?: number | null },
  ): ArtifactVersion {
    const entity = where?.entity ?? a.artifactSequence.project?.entity.name;
    const project = where?.project ?? a.artifactSequence.project?.name;
    const collection = where?.collection ?? a.artifactSequence.name;
    const versionIndex = where?.versionIndex ?? a.versionIndex;
    if (!entity || !project) throw badResponse('ArtifactByID', `artifact ${a.id} has no project`);
    if (versionIndex == null) throw badResponse('ArtifactByID', `artifact ${a.id} has no versionIndex`);
    return {
      id: a.id,
      entity,
      project,
      collection,
      versionIndex,
      version: `v${versionIndex}`,
      state: a.state,
      digest: a.digest,
      size: a.size ?? 0,
      fileCount: a.fileCount ?? 0,
      type: a.artifactType.name,
      qualifiedName: `${entity}/${project}/${collection}:v${versionIndex}`,
    };
  }

  return {
    async versionByName(entity, project, name, signal) {
      const r = await call(
        'ArtifactMembershipByName',
        q.ARTIFACT_MEMBERSHIP_BY_NAME,
        { entity, project, name },
        z.object({
          project: z
            .object({
              artifactCollectionMembership: z
                .object({
                  versionIndex: z.number().int().min(0).nullish(),
                  artifactCollection: z
                    .object({ name: z.string().min(1), project: z.object({ name: z.string(), entity: z.object({ name: z.string() }) }).nullish() })
                    .nullish(),
                  artifact: artifactSchema.nullish(),
                })
                .nullish(),
            })
            .nullish(),
        }),
        signal,
      );
      const m = r.project?.artifactCollectionMembership;
      if (!m?.artifact) return null;
      // The membership's collection is the one the name was looked up in (a linked artifact's own sequence may differ).
      const c = m.artifactCollection;
      return toVersion(m.artifact, {
        entity: c?.project?.entity.name ?? entity,
        project: c?.project?.name ?? project,
        collection: c?.name ?? name.split(':')[0]!,
        versionIndex: m.versionIndex ?? m.artifact.versionIndex ?? null,
      });
    },

    async versionById(artifactId, signal) {
      const r = await call('ArtifactByID', q.ARTIFACT_BY_ID, { id: artifactId }, z.object({ artifact: artifactSchema.nullish() }), signal);
      return r.artifact ? toVersion(r.artifact) : null;
    },

    async manifestUrl(version, signal) {
      const r = await call(
        'FetchArtifactManifest',
        q.FETCH_ARTIFACT_MANIFEST,
        { id: version.id },
        z.object({ artifact: z.object({ currentManifest: z.object({ file: z.object({ directUrl: z.string().url() }) }).nullish() }).nullish() }),
        signal,
      );
      const url = r.artifact?.currentManifest?.file.directUrl;
      if (!url) throw badResponse('FetchArtifactManifest', `artifact ${version.qualifiedName} has no manifest`);
      return url;
    },

    async fileUrls(version, signal) {
      const out = new Map<string, string>();
      let cursor: string | null = null;
      const maxPages = Math.ceil(Math.max(version.fileCount, 1) / FILES_PER_PAGE) + 1;
      for (let page = 0; page < maxPages; page++) {
        const r: {
          project?: {
            artifactCollection?: {
              artifactMembership?: {
                files?: {
                  pageInfo: { endCursor?: string | null; hasNextPage: boolean };
                  edges: Array<{ node?: { name: string; directUrl: string } | null }>;
                } | null;
              } | null;
            } | null;
          } | null;
        } = await call(
          'GetArtifactMembershipFileUrls',
          q.GET_ARTIFACT_MEMBERSHIP_FILE_URLS,
          { entity: version.entity, project: version.project, collection: version.collection, alias: version.version, cursor, perPage: FILES_PER_PAGE },
          z.object({
            project: z
              .object({
                artifactCollection: z
                  .object({
                    artifactMembership: z
                      .object({
                        files: z
                          .object({
                            pageInfo: z.object({ endCursor: z.string().nullish(), hasNextPage: z.boolean() }),
                            edges: z.array(z.object({ node: z.object({ name: z.string(), directUrl: z.string().url() }).nullish() })),
                          })
                          .nullish(),
                      })
                      .nullish(),
                  })
                  .nullish(),
              })
              .nullish(),
          }),
          signal,
        );
        const files = r.project?.artifactCollection?.artifactMembership?.files;
        if (!files) throw badResponse('GetArtifactMembershipFileUrls', `no files for artifact ${version.qualifiedName}`);
        for (const e of files.edges) if (e.node) out.set(e.node.name, e.node.directUrl);
        if (!files.pageInfo.hasNextPage) return out;
        if (!files.pageInfo.endCursor) throw badResponse('GetArtifactMembershipFileUrls', 'pageInfo.endCursor: missing although hasNextPage is true');
        cursor = files.pageInfo.endCursor;
      }
      throw badResponse('GetArtifactMembershipFileUrls', `more pages of files than the ${version.fileCount} files artifact ${version.qualifiedName} declares`);
    },
  };
}
