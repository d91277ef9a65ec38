/**
 * Validation of `builder.destination` and `registry.uri`: an image repository the agent pushes to
 * and tags itself. Follows W&B's `validate_registry_uri` (an `https://` prefix is stripped, no tag,
 * GAR needs an image name, ECR/ACR need a repository) and fixes its gaps: the tag rule holds for
 * every host, not only recognised ones; nested ACR repositories are not mistaken for tags; an ACR
 * host without a repository is refused instead of being waved through as an unknown host.
 */

/** Which registry a host belongs to; `other` is any registry W&B does not recognise (it only warns). */
export type RegistryHostKind = 'ecr' | 'gcr' | 'acr' | 'other';

export interface ImageRepository {
  /** The repository with any `https://` prefix removed, as docker and kaniko want it. */
  uri: string;
  /** Registry host (with port), `docker.io` when the reference names none. */
  host: string;
  /** Repository path below the host. */
  path: string;
  kind: RegistryHostKind;
}

export type ImageRepositoryCheck = { ok: true; value: ImageRepository } | { ok: false; expected: string };

const ACR_HOST = /^[\w-]+\.azurecr\.io$/i;
const GAR_HOST = /^[\w-]+-docker\.pkg\.dev$/i;
const ECR_HOST = /^[\w-]+\.dkr\.ecr\.[\w-]+\.amazonaws\.com(?:\.cn)?$/i;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::\d{1,5})?$/;
// Docker's distribution grammar for one path component.
const COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

function hostKind(host: string): RegistryHostKind {
  if (ECR_HOST.test(host)) return 'ecr';
  if (GAR_HOST.test(host)) return 'gcr';
  if (ACR_HOST.test(host)) return 'acr';
  return 'other';
}

/** Docker's rule: the first component is a host when it has a dot or a port, or is `localhost`. */
function looksLikeHost(part: string): boolean {
  return part.includes('.') || part.includes(':') || part === 'localhost';
}

/**
 * Checks an image repository reference. On failure `expected` says what a valid value looks like,
 * phrased to follow "expected …".
 */
export function checkImageRepository(raw: string): ImageRepositoryCheck {
  const fail = (expected: string): ImageRepositoryCheck => ({ ok: false, expected });
  let uri = raw.startsWith('https://') ? raw.slice('https://'.length) : raw;
  if (SCHEME.test(uri)) return fail('an image repository without a scheme (only an "https://" prefix is removed)');
  if (uri === '') return fail('an image repository such as registry.example.com/team/image');
  if (/\s/.test(uri)) return fail('an image repository without whitespace');
  if (uri.includes('@')) return fail('an image repository without a digest (the agent tags each image with a hash of its source)');
  uri = uri.replace(/\/+$/, '');
  const parts = uri.split('/');
  let host = 'docker.io';
  // A bare host such as `registry.example.com` or `localhost:5000` names no repository to push to.
  const bareHost = parts.length === 1 && (/^[^:]*\.[^:]*(?::\d+)?$/.test(uri) || /^localhost(?::\d+)?$/.test(uri));
  if (bareHost || (parts.length > 1 && looksLikeHost(parts[0]!))) host = parts.shift()!;
  if (!HOST.test(host)) return fail(`an image repository whose registry host is a valid host name (found host "${host}")`);
  const kind = hostKind(host);
  const path = parts.join('/');
  if (kind === 'gcr' && parts.length < 3) {
    return fail('a Google Artifact Registry URI with an image name: <region>-docker.pkg.dev/<project>/<repository>/<image>');
  }
  if (kind === 'acr' && path === '') return fail('an Azure Container Registry URI with a repository: <registry>.azurecr.io/<repository>');
  if (kind === 'ecr' && path === '') {
    return fail('an Elastic Container Registry URI with a repository: <account-id>.dkr.ecr.<region>.amazonaws.com/<repository>');
  }
  if (path === '') return fail(`an image repository below the registry host, such as ${host}/<repository>`);
  const last = parts[parts.length - 1] ?? '';
  const colon = last.indexOf(':');
  if (colon >= 0) {
    return fail(`an image repository without a tag (the agent tags each image with a hash of its source; remove "${last.slice(colon)}")`);
  }
  for (const part of parts) {
    if (!COMPONENT.test(part)) {
      return fail(
        `an image repository whose path components use lowercase letters, digits and single separators (".", "_", "__", "-"), found component "${part}"`,
      );
    }
  }
  return { ok: true, value: { uri, host, path, kind } };
}

/**
 * A build context store W&B supports: an S3 or GCS bucket or an Azure blob container, each with an
 * optional prefix. One pattern so that the JSON Schema carries it too.
 */
export const BUILD_CONTEXT_STORE_PATTERN = /^(?:s3:\/\/[^/\s]+|gs:\/\/[^/\s]+|https:\/\/[^./\s]+\.blob\.core\.windows\.net\/[^/\s]+)(?:\/\S*)?$/;

/** True when `uri` names a supported build context store (see BUILD_CONTEXT_STORE_PATTERN). */
export function isBuildContextStoreUri(uri: string): boolean {
  return BUILD_CONTEXT_STORE_PATTERN.test(uri);
}
