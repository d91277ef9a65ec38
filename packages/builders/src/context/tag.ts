import { createHash } from 'node:crypto';
import { contextError } from './errors.js';

/** Hex digits of a content tag: 64 bits, so that two different contexts practically never share one. */
export const CONTENT_TAG_LENGTH = 16;
/** Hex digits of W&B's tag. */
export const WANDB_TAG_LENGTH = 8;

export interface ContentTagInput {
  /** The Dockerfile the image is built from. */
  dockerfile: string;
  /** sha256 of the packed context's uncompressed tar stream ({@link ContextDigest.sha256}). */
  contextDigest: string;
  /** `--platform`, which changes the image as much as the code does. */
  platform?: string;
  /** Build arguments, likewise. */
  buildArgs?: Readonly<Record<string, string>>;
}

/**
 * Our source-hash tag: the first {@link CONTENT_TAG_LENGTH} hex digits of sha256 over the
 * Dockerfile, the packed context's digest, the platform and the build arguments (sorted). Every
 * byte that reaches the image counts, so a code change gives a new tag even under the same job
 * version; the packing is deterministic, so the same inputs give the same tag on any machine.
 */
export function contentTag(input: ContentTagInput): string {
  const args = Object.entries(input.buildArgs ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const material = JSON.stringify({ v: 1, dockerfile: input.dockerfile, context: input.contextDigest, platform: input.platform ?? '', args });
  return createHash('sha256').update(material).digest('hex').slice(0, CONTENT_TAG_LENGTH);
}

/** W&B's tag (`image_tag_from_dockerfile_and_source`): `sha256(source string + Dockerfile)[:8]`. */
export function wandbTag(sourceString: string, dockerfile: string): string {
  return createHash('sha256')
    .update(sourceString + dockerfile, 'utf8')
    .digest('hex')
    .slice(0, WANDB_TAG_LENGTH);
}

/**
 * W&B's image source string for a job pinned to a version (`entity/project/name:vN`):
 * `f"{artifact.name}:v{artifact.version}"`, where a fetched job artifact's `name` is `name:vN` and
 * its `version` is `vN`, giving `name:vN:vvN`. Undefined for anything else (aliases such as
 * `latest` move, so they do not stand for the code).
 */
export function wandbJobSourceString(job: string | null | undefined): string | undefined {
  if (!job) return undefined;
  const match = /^(?:[^/:]+\/){0,2}([^/:]+):(v\d+)$/.exec(job);
  return match ? `${match[1]}:${match[2]}:v${match[2]}` : undefined;
}

/** W&B's `make_docker_image_name_safe`: lower case, `[^a-z0-9._-]` → `__`, runs of separators collapsed, ends trimmed. */
export function dockerSafeName(name: string): string {
  const safe = name
    .toLowerCase()
    .replace(/[^a-z0-9._-]/g, '__')
    .replace(/[._-]{2,}/g, '__')
    .replace(/^[^a-z0-9]*/, '')
    .replace(/[^a-z0-9]*$/, '');
  return safe || 'launch-image';
}

const HOST = /(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/.source;
const COMPONENT = /[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*/.source;
const REPOSITORY = new RegExp(`^(?:${HOST}/)?${COMPONENT}(?:/${COMPONENT})*$`);
const TAG = /^[\w][\w.-]{0,127}$/;

/**
 * Checks a repository (`[host[:port]/]path`, no tag) as Docker's reference grammar does; throws a
 * LaunchError at stage `build` naming `field` and the offending value.
 */
export function validateRepository(repository: string, field: string): string {
  const shown = JSON.stringify(repository.length > 200 ? `${repository.slice(0, 200)}…` : repository);
  const lastSlash = repository.lastIndexOf('/');
  const hasTag = repository.slice(lastSlash + 1).includes(':') || repository.includes('@');
  const problem = hasTag
    ? 'carries a tag or digest; the builder adds the source-hash tag itself'
    : repository.length > 255
      ? 'is longer than 255 characters'
      : !REPOSITORY.test(repository)
        ? 'is not a valid repository: lower-case letters, digits and separators (. _ __ -) in /-separated parts, after an optional registry host[:port]'
        : undefined;
  if (problem) {
    throw contextError({
      code: 'invalid_image_name',
      message: `${field} ${shown} ${problem}`,
      hint: `set ${field} to a repository such as registry.example.com/team/launch`,
    });
  }
  return repository;
}

/** Checks a tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`); throws naming `field` and the value. */
export function validateTag(tag: string, field: string): string {
  if (!TAG.test(tag)) {
    throw contextError({
      code: 'invalid_image_name',
      message: `${field} ${JSON.stringify(tag.length > 200 ? `${tag.slice(0, 200)}…` : tag)} is not a valid tag: letters, digits, "_", "." and "-", at most 128, not starting with "." or "-"`,
    });
  }
  return tag;
}

/** Splits `repo:tag` at the tag's colon (not a registry port's). */
export function splitImageUri(uri: string): { repository: string; tag: string | undefined } {
  const slash = uri.lastIndexOf('/');
  const colon = uri.lastIndexOf(':');
  return colon > slash ? { repository: uri.slice(0, colon), tag: uri.slice(colon + 1) } : { repository: uri, tag: undefined };
}
