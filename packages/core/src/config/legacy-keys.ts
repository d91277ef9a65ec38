/**
 * Keys of W&B's older agent config (before 2023: `build`, `runner`, `registry.url`, …) and keys
 * copied from the wrong place, each with where its setting lives now. An unknown key with an entry
 * here gets this message instead of a bare "unknown key".
 */
const LEGACY: Record<string, Record<string, string>> = {
  '': {
    build:
      "W&B's old name for the builder block: move its keys under builder (type, build-context-store, build-job-name; cloud-provider becomes environment.type, credentials become builder.secret-name and secret-key)",
    runner:
      "W&B's old runner block: runner settings now live in each queue's config, under resource_args.<resource> (for example resource_args.kubernetes.metadata.namespace)",
    version: "W&B's old config version marker: remove it",
    namespace: 'the Kubernetes namespace of jobs is set in the queue config (resource_args.kubernetes.metadata.namespace)',
    kaniko: 'kaniko is a builder type: write builder.type: kaniko',
    docker: 'docker is a builder type: write builder.type: docker',
  },
  builder: {
    uri: 'did you mean "destination"? (the image repository built images are pushed to; W&B\'s GCP docs write uri, which W&B silently ignores)',
    repository: 'did you mean "destination"? (the image repository built images are pushed to)',
    'cloud-provider': "W&B's old key: the cloud is now environment.type (aws, gcp or azure)",
    credentials: "W&B's old key: kaniko's registry credentials are now builder.secret-name and builder.secret-key",
    'config-map-name': "W&B's old key: build contexts now go to builder.build-context-store (or a PVC), not a ConfigMap",
    registry: 'the image repository is builder.destination',
  },
  registry: {
    url: "W&B's old name for the repository URI: put it in builder.destination (W&B deprecates the registry block)",
    credentials:
      "W&B's old key: registry credentials now come from the environment block's cloud credentials (environment.type) or, for kaniko, builder.secret-name and secret-key",
    image_name: 'did you mean "image-name"?',
    'ecr-provider': "W&B's old key: write registry.type: ecr (or an ECR URI in builder.destination)",
    'ecr-repo-provider': "W&B's old key: write registry.type: ecr (or an ECR URI in builder.destination)",
  },
};

/** The migration or "did you mean" message for an unknown key, if it is a known one. */
export function legacyKeyMessage(key: string, at: ReadonlyArray<PropertyKey>): string | undefined {
  const table = LEGACY[at.join('.')];
  if (!table || !Object.hasOwn(table, key)) return undefined;
  const text = table[key]!;
  // "did you mean" entries read like the generic suggestion: unknown key "uri" (did you mean "destination"?)
  const mean = /^did you mean "([^"]+)"\?\s*(?:\((.*)\))?$/.exec(text);
  if (mean) return `unknown key "${key}" (did you mean "${mean[1]}"?)${mean[2] ? `: ${mean[2]}` : ''}`;
  return `unknown key "${key}": ${text}`;
}
