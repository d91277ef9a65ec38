import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { manifestDigest } from './artifacts.js';
import { createWandbTestServer, type WandbTestServer } from './server.js';

// Raw HTTP against the server's artifact API and signed URLs, independent of @launch/wandb.
const servers: WandbTestServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function gql(s: WandbTestServer, query: string, variables: Record<string, unknown> = {}) {
  const res = await fetch(s.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`api:${s.apiKey}`).toString('base64')}` },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as { data?: Record<string, any>; errors?: Array<{ message: string }> };
}

const MEMBERSHIP = `query ArtifactMembershipByName($entity: String!, $project: String!, $name: String!) {
  project(name: $project, entityName: $entity) { artifactCollectionMembership(name: $name) {
    versionIndex aliases { alias } artifactCollection { __typename name project { name entity { name } } }
    artifact { id state digest size fileCount artifactType { name } currentManifest { file { directUrl } } } } } }`;
const FILES = `query GetArtifactMembershipFileUrls($entity: String!, $project: String!, $collection: String!, $alias: String!, $cursor: String, $perPage: Int) {
  project(name: $project, entityName: $entity) { artifactCollection(name: $collection) { artifactMembership(aliasName: $alias) {
    files(after: $cursor, first: $perPage) { pageInfo { endCursor hasNextPage } edges { node { name directUrl } } } } } } }`;

describe('W&B test server: artifacts', () => {
  it('finds versions by alias and vN, serves a v1 manifest whose digest is the version digest, and pages file URLs', async () => {
    const s = await createWandbTestServer();
    servers.push(s);
    const files = { 'a.txt': 'alpha\n', 'b/c.txt': 'gamma\n', 'd.bin': Buffer.from([1, 2, 3]) };
    const v0 = await s.publishArtifact({ entity: 'tester', project: 'p', name: 'code-x', type: 'code', files, aliases: ['stable'] });
    await s.publishArtifact({ entity: 'tester', project: 'p', name: 'code-x', type: 'code', files: { 'a.txt': 'new\n' } });
    const latest = await gql(s, MEMBERSHIP, { entity: 'tester', project: 'p', name: 'code-x:latest' });
    expect(latest.data!.project.artifactCollectionMembership.versionIndex).toBe(1);
    const stable = (await gql(s, MEMBERSHIP, { entity: 'tester', project: 'p', name: 'code-x:stable' })).data!.project.artifactCollectionMembership;
    expect(stable).toMatchObject({
      versionIndex: 0,
      aliases: [{ alias: 'stable' }],
      artifactCollection: { __typename: 'ArtifactSequence', name: 'code-x', project: { name: 'p', entity: { name: 'tester' } } },
    });
    expect(stable.artifact).toMatchObject({ id: v0.id, state: 'COMMITTED', size: 15, fileCount: 3, artifactType: { name: 'code' } });
    const manifest = (await (await fetch(stable.artifact.currentManifest.file.directUrl)).json()) as {
      version: number;
      contents: Record<string, { digest: string; size: number }>;
    };
    expect(manifest.version).toBe(1);
    expect(manifest.contents['a.txt']).toMatchObject({ digest: createHash('md5').update('alpha\n').digest('base64'), size: 6 });
    expect(manifestDigest(Object.entries(manifest.contents).map(([path, e]) => ({ path, digest: e.digest })))).toBe(stable.artifact.digest);

    const page1 = (await gql(s, FILES, { entity: 'tester', project: 'p', collection: 'code-x', alias: 'v0', perPage: 2 })).data!.project.artifactCollection
      .artifactMembership.files;
    expect(page1.edges.map((e: any) => e.node.name)).toEqual(['a.txt', 'b/c.txt']);
    expect(page1.pageInfo.hasNextPage).toBe(true);
    const page2 = (await gql(s, FILES, { entity: 'tester', project: 'p', collection: 'code-x', alias: 'v0', perPage: 2, cursor: page1.pageInfo.endCursor }))
      .data!.project.artifactCollection.artifactMembership.files;
    expect(page2.edges.map((e: any) => e.node.name)).toEqual(['d.bin']);
    expect(page2.pageInfo.hasNextPage).toBe(false);
    const body = Buffer.from(await (await fetch(page1.edges[1].node.directUrl)).arrayBuffer());
    expect(body.toString()).toBe('gamma\n');
  });

  it('refuses signed URLs with a wrong signature, and records downloads without credentials', async () => {
    const s = await createWandbTestServer();
    servers.push(s);
    const v = await s.publishArtifact({ entity: 'tester', project: 'p', name: 'c', type: 'code', files: { 'x.txt': 'x' } });
    const good = `${s.url}${s.artifacts.signedPath('file', v.id, 'x.txt')}`;
    expect((await fetch(good)).status).toBe(200);
    expect((await fetch(good.replace(/sig=./, 'sig=0'))).status).toBe(403);
    expect((await fetch(good.split('?')[0]!)).status).toBe(403);
    expect(s.downloads.map((d) => d.status)).toEqual([200, 403, 403]);
    // A refused URL names no artifact: it counts among all file downloads only.
    expect(s.countFileDownloads(v.id)).toBe(1);
    expect(s.countFileDownloads()).toBe(3);
    expect(s.countRequests()).toBe(0);
  });

  it('marks a deleted version DELETED and drops its aliases', async () => {
    const s = await createWandbTestServer();
    servers.push(s);
    const v = await s.publishArtifact({ entity: 'tester', project: 'p', name: 'gone', type: 'code', files: { 'x.txt': 'x' } });
    s.deleteArtifact(v.id);
    expect((await gql(s, MEMBERSHIP, { entity: 'tester', project: 'p', name: 'gone:latest' })).data!.project.artifactCollectionMembership).toBeNull();
    expect((await gql(s, MEMBERSHIP, { entity: 'tester', project: 'p', name: 'gone:v0' })).data!.project.artifactCollectionMembership.artifact.state).toBe(
      'DELETED',
    );
    expect((await gql(s, `query ArtifactByID($id: ID!) { artifact(id: $id) { state } }`, { id: v.id })).data!.artifact.state).toBe('DELETED');
  });

  it('serves download faults: a cut-off body and a corrupted byte, once each', async () => {
    const s = await createWandbTestServer();
    servers.push(s);
    const content = Buffer.alloc(1024 * 1024, 5);
    const v = await s.publishArtifact({ entity: 'tester', project: 'p', name: 'f', type: 'code', files: { 'w.bin': content } });
    const url = `${s.url}${s.artifacts.signedPath('file', v.id, 'w.bin')}`;
    s.addDownloadFault({ kind: 'cut', path: 'w.bin' });
    s.addDownloadFault({ kind: 'corrupt', path: 'w.bin' });
    await expect(fetch(url).then((r) => r.arrayBuffer())).rejects.toThrow();
    const corrupt = Buffer.from(await (await fetch(url)).arrayBuffer());
    expect(corrupt.length).toBe(content.length);
    expect(corrupt.equals(content)).toBe(false);
    expect(Buffer.from(await (await fetch(url)).arrayBuffer()).equals(content)).toBe(true);
    expect(s.artifacts.pendingDownloadFaults()).toBe(0);
  });
});
