import { LaunchValidationError } from '@launch/core';
import { describeValue } from '@launch/core/internal';
import { GAR_MULTI_REGIONS, GCP_REGIONS, suggestGcpRegion } from './regions.js';

/** W&B's Artifact Registry regex (`wandb/sdk/launch/utils.py` `GCP_ARTIFACT_REGISTRY_URI_REGEX`), matched from the start. */
export const WANDB_GAR_PATTERN =
  /^(?:https:\/\/)?(?<region>[\w-]+)-docker\.pkg\.dev\/(?<project>[\w-]+)\/(?<repository>[\w-]+)\/?(?<image_name>[\w-]+)?(?<tag>:.*)?$/;

/** An Artifact Registry image repository: `<region>-docker.pkg.dev/<project>/<repository>/<image>`. */
export interface GarRepository {
  region: string;
  project: string;
  repository: string;
  image: string;
  /** `<region>-docker.pkg.dev` */
  host: string;
  /** `<host>/<project>/<repository>/<image>` */
  uri: string;
}

const FORM = '<region>-docker.pkg.dev/<project>/<repository>/<image>';

function bad(path: string, found: unknown, message: string): LaunchValidationError {
  return new LaunchValidationError({
    code: 'registry.invalid_uri',
    stage: 'agent',
    subject: 'Artifact Registry',
    issues: [{ path, expected: FORM, found: describeValue(found, 120), message }],
  });
}

/** Checks the parts (Artifact Registry's naming rules) and builds the repository. */
export function garRepository(parts: { region: string; project: string; repository: string; image: string }, path = 'uri'): GarRepository {
  const { region, project, repository, image } = parts;
  if (!GCP_REGIONS.includes(region) && !GAR_MULTI_REGIONS.includes(region)) {
    const suggestion = suggestGcpRegion(region, [...GCP_REGIONS, ...GAR_MULTI_REGIONS]);
    throw bad(path, region, `region ${describeValue(region)} is not an Artifact Registry location${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`);
  }
  if (!/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/.test(project))
    throw bad(path, project, `project ${describeValue(project)} is not a project id (6–30 lower-case letters, digits and hyphens, starting with a letter)`);
  if (!/^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/.test(repository))
    throw bad(
      path,
      repository,
      `repository ${describeValue(repository)} is not an Artifact Registry repository name (lower-case letters, digits and hyphens, starting with a letter, up to 63)`,
    );
  if (!/^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/.test(image))
    throw bad(path, image, `image ${describeValue(image)} is not an image name (lower-case letters, digits and . _ - separators)`);
  const host = `${region}-docker.pkg.dev`;
  return { region, project, repository, image, host, uri: `${host}/${project}/${repository}/${image}` };
}

/**
 * Parses an Artifact Registry URI by W&B's rule (`[https://]<region>-docker.pkg.dev/<project>/<repository>[/<image>][:<tag>]`),
 * then checks each part. Unlike W&B's regex, a tag and a missing image name are refused here (the
 * registry names a repository images are pushed into; Artifact Registry's Docker paths need an image).
 */
export function parseGarUri(uri: string, path = 'uri'): GarRepository {
  if (typeof uri !== 'string' || uri === '') throw bad(path, uri, `expected ${FORM}, found ${describeValue(uri)}`);
  const m = WANDB_GAR_PATTERN.exec(uri);
  if (!m?.groups) throw bad(path, uri, `${describeValue(uri, 120)} is not of the form [https://]${FORM}`);
  const { region, project, repository, image_name: image, tag } = m.groups as Record<string, string | undefined>;
  if (tag) throw bad(path, uri, `names a tag (${describeValue(tag.slice(1))}): give the image repository only`);
  if (!image) throw bad(path, uri, `names no image: add one, e.g. ${uri.replace(/\/$/, '')}/launch`);
  return garRepository({ region: region!, project: project!, repository: repository!, image }, path);
}
