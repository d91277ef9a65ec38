import { describe, expect, it } from 'vitest';
import { LaunchValidationError } from '../errors.js';
import { agentConfigWarnings } from './load.js';
import { parseAgentConfig } from './parse.js';

/**
 * Parity with W&B's validator (agent/config.py, loader.py, registry/*.py, kaniko_builder.py at
 * wandb b6e29505): what W&B refuses is refused, what it warns about is a warning, each naming the field.
 */

const NO_ENV = { env: {} };

function issues(raw: unknown, env: Record<string, string> = {}): string[] {
  try {
    parseAgentConfig(raw, 'config', { env });
  } catch (error) {
    expect(error).toBeInstanceOf(LaunchValidationError);
    return (error as LaunchValidationError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  return [];
}

const warningsOf = (raw: Record<string, unknown>) => agentConfigWarnings(parseAgentConfig(raw, 'config', NO_ENV), raw, 'config.yaml');

describe('W&B refuses, we refuse', () => {
  it.each<[string, Record<string, unknown>, string[]]>([
    [
      'kaniko without a build context store or a PVC',
      { builder: { type: 'kaniko', destination: '123456789012.dkr.ecr.us-east-1.amazonaws.com/launch' } },
      [
        'builder.build-context-store: expected a build context store (s3://…, gs://… or an Azure blob URL) for the kaniko builder, or a PVC named by WANDB_LAUNCH_KANIKO_PVC_NAME, found nothing',
      ],
    ],
    [
      'registry.type ecr with a non-ECR host',
      { registry: { type: 'ecr', uri: 'registry.example.com/launch' } },
      [
        'registry.uri: expected an ecr repository URI (<account-id>.dkr.ecr.<region>.amazonaws.com/<repository>) for a registry of type ecr; use type oci for another registry, found "registry.example.com/launch"',
      ],
    ],
    [
      'registry.type gcr with an ACR host',
      { registry: { type: 'gcr', uri: 'reg.azurecr.io/launch' } },
      [
        'registry.uri: expected a gcr repository URI (<region>-docker.pkg.dev/<project>/<repository>/<image>) for a registry of type gcr; use type oci for another registry, found "reg.azurecr.io/launch"',
      ],
    ],
    [
      'ECR uri together with its parts',
      { registry: { type: 'ecr', uri: '1.dkr.ecr.us-east-1.amazonaws.com/r', region: 'us-east-1' } },
      ['registry.region: expected either uri or account_id, region, repo_name for an ecr registry, not both, found "us-east-1"'],
    ],
    [
      'GAR parts without a region',
      { registry: { type: 'gcr', repository: 'r', 'image-name': 'i' } },
      ["registry.uri: expected a uri, or repository, image-name and region (project defaults to the credentials' project), for a gcr registry, found nothing"],
    ],
    [
      'a builder block without a type',
      { builder: { destination: 'r.example.com/team/img' } },
      ['builder.type: expected one of "docker", "kaniko", "noop" (a builder block with other keys needs a type, as W&B requires), found nothing'],
    ],
    [
      'GAR destination without an image name',
      { builder: { type: 'docker', destination: 'https://us-docker.pkg.dev/p/repo' } },
      [
        'builder.destination: expected a Google Artifact Registry URI with an image name: <region>-docker.pkg.dev/<project>/<repository>/<image>, found "https://us-docker.pkg.dev/p/repo"',
      ],
    ],
    [
      'a tag in the destination',
      { builder: { type: 'docker', destination: '1.dkr.ecr.us-east-1.amazonaws.com/r:v1' } },
      [
        'builder.destination: expected an image repository without a tag (the agent tags each image with a hash of its source; remove ":v1"), found "1.dkr.ecr.us-east-1.amazonaws.com/r:v1"',
      ],
    ],
    [
      'a bad context store',
      { builder: { type: 'kaniko', 'build-context-store': 'bucket' } },
      [
        'builder.build-context-store: expected s3://<bucket>/<prefix>, gs://<bucket>/<prefix> or https://<account>.blob.core.windows.net/<container>/<prefix>, found "bucket"',
      ],
    ],
  ])('%s', (_name, raw, expected) => {
    expect(issues(raw)).toEqual(expected);
  });

  it('accepts kaniko without a context store when a PVC carries the contexts (WANDB_LAUNCH_KANIKO_PVC_NAME)', () => {
    expect(issues({ builder: { type: 'kaniko' } }, { WANDB_LAUNCH_KANIKO_PVC_NAME: 'kaniko-pvc' })).toEqual([]);
  });
});

describe('W&B warns, we warn', () => {
  it("accepts environment.project from W&B's GCP docs with a warning, and any other environment key", () => {
    expect(warningsOf({ environment: { type: 'gcp', region: 'us-central1', project: 'my-project' } })).toEqual([
      'environment.project: ignored: the Google Cloud project comes from the credentials (as in W&B, which warns about it too)',
    ]);
    expect(warningsOf({ environment: { type: 'azure', regoin: 'x' } })).toEqual([
      'environment.regoin: ignored: it is not an environment key (W&B warns about it too); did you mean "region"?',
    ]);
  });

  it('warns that W&B deprecates the registry block, and about unknown registry hosts', () => {
    expect(warningsOf({ registry: { type: 'ecr', uri: '1.dkr.ecr.us-east-1.amazonaws.com/r' } })).toEqual([
      'registry: W&B deprecates the registry block: put the image repository in builder.destination',
    ]);
    expect(warningsOf({ builder: { type: 'docker', destination: 'registry.example.com/team/img' } })).toEqual([
      'builder.destination: registry host "registry.example.com" is not ECR, GAR or ACR; make sure the agent can push images there',
    ]);
  });
});

describe('placeholders are named as placeholders', () => {
  it.each<[string, Record<string, unknown>, string]>([
    [
      'the Helm chart README entity',
      { entity: '<W_B_ENTITY>' },
      'entity: entity is still the placeholder <W_B_ENTITY>: put your W&B entity (team or user name) here',
    ],
    ['a name-like queue', { queues: ['<YOUR QUEUE NAME>'] }, 'queues[0]: queues[0] is still the placeholder <YOUR QUEUE NAME>: put the name of a queue here'],
    [
      'an envsubst variable',
      { entity: '${WANDB_ENTITY}' },
      'entity: entity is still the variable placeholder ${WANDB_ENTITY}: put your W&B entity (team or user name) here',
    ],
    ['a Helm template', { queue: '{{ .Values.queue }}' }, 'queue: queue is still the template placeholder {{ .Values.queue }}: put the name of a queue here'],
    [
      'a docs destination',
      { builder: { type: 'docker', destination: '<account-id>.ecr.<aws-region>.amazonaws.com/<repository-name>' } },
      'builder.destination: builder.destination still holds the placeholder <account-id> in "<account-id>.ecr.<aws-region>.amazonaws.com/<repository-name>": put your image repository, such as 123456789012.dkr.ecr.us-east-1.amazonaws.com/launch here',
    ],
    [
      'a choice placeholder',
      { builder: { type: '<kaniko|docker>' } },
      'builder.type: builder.type is still the placeholder <kaniko|docker>: put docker, kaniko or noop here',
    ],
  ])('%s', (_name, raw, expected) => {
    expect(issues(raw)).toEqual([expected]);
  });

  it("never shows an API key placeholder's text", () => {
    expect(issues({ api_key: '<YOUR_API_KEY>' })).toEqual([
      'api_key: api_key is still the placeholder: put your W&B API key (better: the WANDB_API_KEY variable) here',
    ]);
  });
});

describe('legacy keys say where they live now', () => {
  it.each<[Record<string, unknown>, string]>([
    [
      { build: { type: 'kaniko' } },
      'build: unknown key "build": W&B\'s old name for the builder block: move its keys under builder (type, build-context-store, build-job-name; cloud-provider becomes environment.type, credentials become builder.secret-name and secret-key)',
    ],
    [
      { runner: { type: 'kubernetes' } },
      'runner: unknown key "runner": W&B\'s old runner block: runner settings now live in each queue\'s config, under resource_args.<resource> (for example resource_args.kubernetes.metadata.namespace)',
    ],
    [{ version: 1 }, 'version: unknown key "version": W&B\'s old config version marker: remove it'],
    [
      { registry: { url: 'x' } },
      'registry.url: unknown key "url": W&B\'s old name for the repository URI: put it in builder.destination (W&B deprecates the registry block)',
    ],
    [
      { registry: { credentials: {} } },
      'registry.credentials: unknown key "credentials": W&B\'s old key: registry credentials now come from the environment block\'s cloud credentials (environment.type) or, for kaniko, builder.secret-name and secret-key',
    ],
    [
      { registry: { type: 'gcr', uri: 'us-docker.pkg.dev/p/r/i', image_name: 'x' } },
      'registry.image_name: unknown key "image_name" (did you mean "image-name"?)',
    ],
    [
      { builder: { type: 'docker', uri: 'us-docker.pkg.dev/p/r/i' } },
      'builder.uri: unknown key "uri" (did you mean "destination"?): the image repository built images are pushed to; W&B\'s GCP docs write uri, which W&B silently ignores',
    ],
    [
      { builder: { type: 'kaniko', 'build-context-store': 's3://b', 'cloud-provider': 'aws' } },
      'builder.cloud-provider: unknown key "cloud-provider": W&B\'s old key: the cloud is now environment.type (aws, gcp or azure)',
    ],
  ])('%j', (raw, expected) => {
    expect(issues(raw)).toEqual([expected]);
  });
});

describe('a Helm values file given as the agent config', () => {
  it('is recognised and the user told to pass its launchConfig', () => {
    expect(issues({ agent: { apiKey: '' }, namespace: 'wandb', launchConfig: 'queues: [default]\n' })).toEqual([
      ': expected an agent config, found a Helm values file of the launch-agent chart (top-level agent, namespace, launchConfig): the agent config is the text under launchConfig; save it to a file and pass that, or check it in place with `launch-agent config check --from-values FILE`',
    ]);
    expect(issues({ agent: { image: 'x' }, baseUrl: 'https://api.wandb.ai' })).toEqual([
      ': expected an agent config, found a Helm values file of the launch-agent chart (top-level agent, baseUrl): the agent config is what launchConfig holds (the chart wants it as a string: launchConfig: |); pass that instead',
    ]);
  });
});

describe('W&B docs and repository examples', () => {
  // docs.wandb.ai "Set up launch agent" (seed-agent-setup.md), W&B's Helm chart README, wandb/sdk/launch/deploys.
  it("accepts the docs' AWS, Azure and GCP configs once their placeholders are filled, as W&B does", () => {
    expect(
      issues({
        environment: { type: 'aws', region: 'us-east-1' },
        builder: { type: 'kaniko', destination: '123456789012.dkr.ecr.us-east-1.amazonaws.com/launch', 'build-context-store': 's3://bucket/ctx' },
      }),
    ).toEqual([]);
    expect(
      issues({
        environment: { type: 'azure' },
        builder: { type: 'kaniko', destination: 'https://reg.azurecr.io/launch', 'build-context-store': 'https://acct.blob.core.windows.net/ctx' },
      }),
    ).toEqual([]);
    // GCP: environment.project is W&B's warning; builder.uri is silently ignored by W&B and refused here with "did you mean".
    expect(
      issues({
        environment: { type: 'gcp', region: 'us-central1', project: 'p' },
        builder: { type: 'kaniko', destination: 'us-central1-docker.pkg.dev/p/r/img', 'build-context-store': 'gs://b/ctx' },
      }),
    ).toEqual([]);
  });

  it("names every placeholder of the docs' AWS config as it is printed", () => {
    expect(
      issues({
        environment: { type: 'aws', region: '<aws-region>' },
        builder: {
          type: '<kaniko|docker>',
          destination: '<account-id>.ecr.<aws-region>.amazonaws.com/<repository-name>',
          'build-context-store': 's3://<bucket-name>/<path>',
        },
      }).map((i) => i.split(':')[0]),
    ).toEqual(['environment.region', 'builder.type', 'builder.destination', 'builder.build-context-store']);
  });

  it('accepts the Helm chart README config once filled, and names its placeholders as printed', () => {
    expect(issues({ entity: 'acme', max_jobs: -1, queues: ['gpu'], builder: { type: 'noop' } })).toEqual([]);
    expect(issues({ entity: '<W_B_ENTITY>', max_jobs: -1, queues: ['<W_B_QUEUE>'], builder: { type: 'noop' } }).map((i) => i.split(':')[0])).toEqual([
      'entity',
      'queues[0]',
    ]);
  });

  it('refuses the old deploys/ configs as W&B does, saying why', () => {
    // deploys/aws-ec2/launch-config.yaml: ECR parts with `repository`, no account_id (W&B refuses: region/account missing).
    expect(
      issues({
        max_jobs: -1,
        base_url: 'https://api.wandb.ai',
        queues: ['sagemaker'],
        environment: { type: 'aws', region: 'us-east-2' },
        registry: { type: 'ecr', repository: 'repo' },
        builder: { type: 'docker' },
      }),
    ).toEqual(['registry.uri: expected a uri, or account_id, region and repo_name, for an ecr registry, found nothing']);
    // deploys/gcp-vertex: `image_name` is the old spelling.
    expect(
      issues({
        queues: ['q'],
        environment: { type: 'gcp', region: 'us-central1' },
        registry: { type: 'gcr', repository: 'r', image_name: 'launch-images' },
        builder: { type: 'docker' },
      }),
    ).toEqual([
      'registry.image_name: unknown key "image_name" (did you mean "image-name"?)',
      "registry.uri: expected a uri, or repository, image-name and region (project defaults to the credentials' project), for a gcr registry, found nothing",
    ]);
    // deploys/systemd: `version: 1`, and an empty entity.
    expect(issues({ version: 1, project: 'uncategorized', entity: '', max_jobs: -1, queues: ['default'] })).toEqual([
      'entity: expected a non-empty string, found ""',
      'version: unknown key "version": W&B\'s old config version marker: remove it',
    ]);
  });
});
