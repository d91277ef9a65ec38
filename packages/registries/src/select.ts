import { LaunchError, type Registry } from '@launch/core';
import { describeValue } from '@launch/core/internal';
import { createOciRegistry, type OciRegistryOptions } from './oci-registry.js';
import { parseImageReference, registryHostOnly } from './reference.js';

/** The registry kinds a destination can name: the three clouds W&B knows, or a generic OCI registry. */
export type RegistryType = 'acr' | 'gar' | 'ecr' | 'oci';

/** W&B's regexes (`wandb/sdk/launch/utils.py`), matched against the whole URI as `re.match` does. */
export const WANDB_REGISTRY_PATTERNS = {
  acr: /^(?:https:\/\/)?([\w]+)\.azurecr\.io\/(?<repository>[\w-]+):?(?<tag>.*)/,
  gar: /^(?:https:\/\/)?(?<region>[\w-]+)-docker\.pkg\.dev\/(?<project>[\w-]+)\/(?<repository>[\w-]+)\/?(?<image_name>[\w-]+)?(?<tag>:.*)?$/,
  ecr: /^(?:https:\/\/)?(?<account>[\w-]+)\.dkr\.ecr\.(?<region>[\w-]+)\.amazonaws\.com\/(?<repository>[./\w-]+):?(?<tag>.*)$/,
} as const;

/** Hosts that belong to a cloud registry even when the URI is not in the form W&B's regex accepts. */
const CLOUD_HOSTS: Array<[Exclude<RegistryType, 'oci'>, RegExp, string]> = [
  ['acr', /\.azurecr\.io$/, '<name>.azurecr.io/<repository>'],
  ['gar', /-docker\.pkg\.dev$/, '<region>-docker.pkg.dev/<project>/<repository>[/<image>]'],
  ['ecr', /\.dkr\.ecr\.[^.]+\.amazonaws\.com(?:\.cn)?$/, '<account>.dkr.ecr.<region>.amazonaws.com/<repository>'],
];

const TYPE_NAMES: Record<RegistryType, string> = {
  acr: 'Azure Container Registry (acr)',
  gar: 'Google Artifact Registry (gar)',
  ecr: 'Amazon Elastic Container Registry (ecr)',
  oci: 'an OCI Distribution registry (oci)',
};

function invalidUri(uri: string, what: string, hint: string): LaunchError {
  return new LaunchError({
    code: 'registry.invalid_uri',
    stage: 'agent',
    category: 'InvalidSpec',
    message: `registry uri ${describeValue(uri, 120)} is invalid: ${what}`,
    hint,
  });
}

/**
 * The registry type of a destination (`builder.destination` or `registry.uri`), chosen as W&B's
 * `registry_from_uri` does: `*.azurecr.io` → acr, `*-docker.pkg.dev` → gar,
 * `*.dkr.ecr.*.amazonaws.com` → ecr (each by W&B's regex), anything else → a generic OCI registry.
 * Unlike W&B, a cloud host in a form its regex rejects is an error rather than a silent fallback.
 * Validates the reference first (LaunchError `registry.invalid_reference` / `registry.invalid_uri`).
 */
export function registryTypeOf(uri: string): RegistryType {
  if (typeof uri !== 'string' || uri === '')
    throw invalidUri(String(uri), `expected a non-empty string, found ${describeValue(uri)}`, 'give host[:port]/repository, e.g. 127.0.0.1:5000/launch');
  const hostOnly = registryHostOnly(uri);
  if (hostOnly) throw invalidUri(uri, 'it names only a registry host and no repository', `add a repository path, e.g. ${hostOnly}/launch`);
  const ref = parseImageReference(uri);
  for (const type of ['acr', 'gar', 'ecr'] as const) {
    if (WANDB_REGISTRY_PATTERNS[type].test(uri)) return type;
  }
  for (const [type, host, form] of CLOUD_HOSTS) {
    if (host.test(ref.host)) {
      throw invalidUri(uri, `${ref.host} is ${TYPE_NAMES[type]}, but the uri is not of the form ${form}`, `write it as https://${form}`);
    }
  }
  return 'oci';
}

/** Options of {@link selectRegistry}: the OCI registry's options, and factories for the cloud registries. */
export interface SelectRegistryOptions extends Omit<OciRegistryOptions, 'uri'> {
  /** Registries for the cloud types, supplied by the cloud packages; until then those types are refused. */
  cloud?: Partial<Record<Exclude<RegistryType, 'oci'>, (uri: string) => Registry>>;
}

/**
 * The registry for a destination URI, by {@link registryTypeOf}: a generic OCI Distribution registry
 * ({@link createOciRegistry}) for any host that is not a cloud registry; for ACR, GAR and ECR the factory
 * given in `options.cloud`, else a LaunchError (`registry.not_available`) naming the host and the type.
 *
 * @example
 * const registry = selectRegistry('127.0.0.1:5000/launch', { credentials: { username, password } });
 */
export function selectRegistry(uri: string, options: SelectRegistryOptions = {}): Registry {
  const type = registryTypeOf(uri);
  const { cloud, ...ociOptions } = options;
  if (type === 'oci') return createOciRegistry({ ...ociOptions, uri });
  const factory = cloud?.[type];
  if (factory) return factory(uri);
  const host = parseImageReference(uri).host;
  throw new LaunchError({
    code: 'registry.not_available',
    stage: 'agent',
    message: `registry ${host} is ${TYPE_NAMES[type]}: not available yet: the cloud packages bring it`,
    hint: `pass a ${type} factory in options.cloud (the cloud packages provide one), or push to another registry`,
  });
}
