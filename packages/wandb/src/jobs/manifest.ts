import { createHash } from 'node:crypto';
import { LaunchError } from '@launch/core';
import { zodIssues } from '@launch/core/internal';
import { z } from 'zod';

/** One file of an artifact manifest (v1). */
export interface ManifestEntry {
  /** Path in the artifact, `/`-separated, checked to stay inside the artifact's directory. */
  path: string;
  /** Base64 MD5 of the content (W&B's `digest`). */
  digest: string;
  size: number;
}

/** Base64 of 16 bytes. */
const B64_MD5 = /^[A-Za-z0-9+/]{22}==$/;

const entrySchema = z
  .object({
    digest: z.string(),
    size: z.number().int().min(0).nullish(),
    ref: z.string().nullish(),
    birthArtifactID: z.string().nullish(),
    extra: z.record(z.string(), z.unknown()).nullish(),
  })
  .passthrough();

const manifestSchema = z
  .object({
    version: z.literal(1),
    storagePolicy: z.string(),
    storagePolicyConfig: z.record(z.string(), z.unknown()).nullish(),
    contents: z.record(z.string(), entrySchema),
  })
  .passthrough();

/** Why an artifact path is unsafe to write under a directory, or undefined when it is safe. */
export function unsafePathReason(path: string): string | undefined {
  if (path === '') return 'it is empty';
  if (path.includes('\0')) return 'it contains a NUL byte';
  if (path.includes('\\')) return 'it contains a backslash';
  if (path.startsWith('/')) return 'it is absolute';
  const parts = path.split('/');
  if (parts.some((p) => p === '..')) return "it has a '..' segment";
  if (parts.some((p) => p === '' || p === '.')) return "it has an empty or '.' segment";
  return undefined;
}

/** W&B's manifest digest: hex MD5 over `wandb-artifact-manifest-v1\n` and `path:digest\n` per entry, sorted by path. */
export function manifestDigest(entries: readonly ManifestEntry[]): string {
  const h = createHash('md5').update('wandb-artifact-manifest-v1\n');
  for (const e of [...entries].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) h.update(`${e.path}:${e.digest}\n`);
  return h.digest('hex');
}

/**
 * Parses a v1 artifact manifest and checks it: every entry a stored file (reference entries such as
 * `s3://…` are refused), a base64 MD5 digest, a path that stays inside the artifact's directory, and
 * the entries hashing to the digest the API gave for the version (so the cache key names this content).
 */
export function parseManifest(text: string, artifact: { qualifiedName: string; digest: string }): ManifestEntry[] {
  const fail = (detail: string, cause?: unknown) =>
    new LaunchError({
      code: 'wandb.artifact_manifest_invalid',
      stage: 'agent',
      message: `the manifest of artifact ${artifact.qualifiedName} is invalid: ${detail}`,
      ...(cause === undefined ? {} : { cause }),
    });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw fail(`not JSON (${(error as Error).message})`, error);
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = zodIssues(parsed.error, raw)[0];
    throw fail(issue ? `${issue.path || '(root)'}: ${issue.message}` : 'wrong shape');
  }
  const entries: ManifestEntry[] = [];
  for (const [path, entry] of Object.entries(parsed.data.contents)) {
    const unsafe = unsafePathReason(path);
    if (unsafe) throw fail(`entry ${JSON.stringify(path)} cannot be written: ${unsafe}`);
    if (entry.ref) throw fail(`entry ${JSON.stringify(path)} is a reference to ${entry.ref.split('?')[0]}; reference artifacts are not supported for job code`);
    if (!B64_MD5.test(entry.digest)) throw fail(`entry ${JSON.stringify(path)}: digest ${JSON.stringify(entry.digest.slice(0, 64))} is not a base64 MD5`);
    if (entry.size == null) throw fail(`entry ${JSON.stringify(path)} has no size`);
    entries.push({ path, digest: entry.digest, size: entry.size });
  }
  // A file and a directory of the same name cannot both be written.
  const paths = new Set(entries.map((e) => e.path));
  for (const e of entries) {
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (paths.has(dir)) throw fail(`entry ${JSON.stringify(dir)} is a file and also the directory of ${JSON.stringify(e.path)}`);
    }
  }
  const computed = manifestDigest(entries);
  if (computed !== artifact.digest) {
    throw fail(`its entries hash to ${computed}, but W&B gives the version's digest as ${artifact.digest}`);
  }
  return entries;
}
