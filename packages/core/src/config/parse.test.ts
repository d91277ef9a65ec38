import { describe, expect, it } from 'vitest';
import { LaunchError, LaunchValidationError } from '../errors.js';
import { maxFromConfig, parseAgentConfig } from './parse.js';
import { DEFAULT_BUILD_JOB_NAME, DEFAULT_KANIKO_IMAGE } from './schema.js';

const SECRET = 'abcdef0123456789abcdef0123456789abcdef01';

/** Parses and returns the validation error, failing the test when parsing succeeds. */
function failure(raw: unknown): LaunchValidationError {
  try {
    parseAgentConfig(raw, 'config /tmp/launch-config.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(LaunchValidationError);
    return error as LaunchValidationError;
  }
  throw new Error('expected the config to be refused');
}

/** The single issue of a refused config, by path. */
function issueAt(raw: unknown, path: string) {
  const error = failure(raw);
  const issue = error.issues.find((i) => i.path === path);
  expect(issue, `no issue at ${path} in:\n${error.message}`).toBeDefined();
  return issue!;
}

describe('parseAgentConfig: valid configs', () => {
  it('applies W&B defaults and ours to an empty config', () => {
    for (const raw of [undefined, null, {}]) {
      expect(parseAgentConfig(raw, 'empty')).toEqual({
        queues: [],
        max_jobs: 1,
        max_schedulers: 1,
        secure_mode: false,
        verbosity: 0,
        stopped_run_timeout: 60,
        start_timeout: 1800,
        max_resume_count: 5,
        kill_grace_period: 10,
      });
    }
  });

  it('accepts every key with a valid value', () => {
    const builder = {
      type: 'kaniko',
      destination: 'https://us-central1-docker.pkg.dev/proj/repo/image',
      platform: 'linux/arm64',
      'build-context-store': 's3://bucket/contexts',
      'build-job-name': 'build',
      'secret-name': 'registry-creds',
      'secret-key': 'config.json',
      'kaniko-image': 'gcr.io/kaniko-project/executor:v1.23.0',
      'kaniko-config': { spec: { template: { spec: { containers: [{ name: 'c', resources: {} }] } } } },
    };
    const rest = {
      entity: 'team',
      max_jobs: -1,
      max_schedulers: 3,
      secure_mode: true,
      verbosity: 2,
      stopped_run_timeout: 0,
      registry: { type: 'ecr', account_id: '123456789012', region: 'us-east-1', repo_name: 'launch' },
      environment: { type: 'aws', region: 'us-east-1' },
      source: 'embedded',
      base_url: 'https://wandb.example.com',
      api_key: SECRET,
      poll_interval: 2.5,
      start_timeout: 0,
      state_dir: '/var/lib/launch',
      log_file: '-',
      max_resume_count: 0,
      kill_grace_period: 30,
    };
    const config = parseAgentConfig({ ...rest, builder, queues: ['gpu', 'cpu'], queue: 'extra', project: 'ignored' }, 'full');
    // Every value kept as written, except: queue folded into queues, project dropped, https:// stripped.
    expect(config).toEqual({
      ...rest,
      queues: ['gpu', 'cpu', 'extra'],
      builder: { ...builder, destination: 'us-central1-docker.pkg.dev/proj/repo/image' },
    });
    expect(config).not.toHaveProperty('project');
    expect(config).not.toHaveProperty('queue');
  });

  it('fills builder defaults (effective kaniko image v1.11.0) when a builder block is given', () => {
    expect(parseAgentConfig({ builder: { type: 'docker' } }, 'b').builder).toEqual({
      type: 'docker',
      'build-job-name': DEFAULT_BUILD_JOB_NAME,
      'kaniko-image': DEFAULT_KANIKO_IMAGE,
    });
    expect(DEFAULT_KANIKO_IMAGE).toBe('gcr.io/kaniko-project/executor:v1.11.0');
    expect(DEFAULT_BUILD_JOB_NAME).toBe('wandb-launch-container-build');
  });

  it('accepts the other registry and environment shapes', () => {
    const ok = (raw: Record<string, unknown>) => expect(() => parseAgentConfig(raw, 'r')).not.toThrow();
    ok({ registry: { type: 'ecr', uri: '123456789012.dkr.ecr.us-east-1.amazonaws.com/launch' } });
    ok({ registry: { type: 'ecr', account_id: '1', region: 'us-east-1', repository: 'launch' } });
    ok({ registry: { type: 'gcr', repository: 'repo', 'image-name': 'img', region: 'us-central1', project: 'p' } });
    ok({ registry: { type: 'gcr', repository: 'repo', 'image-name': 'img', region: 'us-central1' } });
    ok({ registry: { type: 'gcr', uri: 'us-central1-docker.pkg.dev/p/r/img' } });
    ok({ registry: { type: 'acr', uri: 'https://reg.azurecr.io/launch' } });
    ok({ registry: { type: 'oci', uri: 'localhost:5000/launch', insecure: true } });
    ok({ registry: { type: 'local' } });
    ok({ registry: {} });
    for (const type of ['gcp', 'aws']) ok({ environment: { type, region: 'r' } });
    for (const type of ['azure', 'local']) ok({ environment: { type } });
    for (const platform of ['linux/amd64', 'linux/arm64']) ok({ builder: { type: 'docker', platform } });
    for (const store of ['gs://bucket', 'https://acct.blob.core.windows.net/container/prefix'])
      ok({ builder: { type: 'kaniko', 'build-context-store': store } });
    for (const type of ['docker', 'noop']) ok({ builder: { type } });
  });

  it('treats empty YAML values (null) as unset', () => {
    const config = parseAgentConfig(
      { entity: null, builder: { type: 'docker', platform: null, destination: 'r.example.com/img' }, registry: null, max_jobs: null },
      'n',
    );
    expect(config.entity).toBeUndefined();
    expect(config.registry).toBeUndefined();
    expect(config.max_jobs).toBe(1);
    expect(config.builder?.platform).toBeUndefined();
  });

  it('appends queue to queues without duplicates', () => {
    expect(parseAgentConfig({ queues: ['a', 'b'], queue: 'a' }, 'q').queues).toEqual(['a', 'b']);
    expect(parseAgentConfig({ queue: 'solo' }, 'q').queues).toEqual(['solo']);
  });
});

describe('parseAgentConfig: bad input', () => {
  it('names the subject and the error family', () => {
    const error = failure({ max_jobs: 'many' });
    expect(error.code).toBe('config.invalid');
    expect(error.stage).toBe('agent');
    expect(LaunchError.isInstance(error)).toBe(true);
    expect(error.message.startsWith('config /tmp/launch-config.yaml is invalid:\n')).toBe(true);
  });

  it.each<[string, unknown, string, string]>([
    ['wrong type: string for int', { max_jobs: 'many' }, 'max_jobs', 'expected -1 (no limit) or an integer >= 0, found "many"'],
    ['wrong type: fraction', { max_schedulers: 1.5 }, 'max_schedulers', 'expected -1 (no limit) or an integer >= 0, found number 1.5'],
    ['negative max_jobs other than -1', { max_jobs: -2 }, 'max_jobs', 'expected -1 (no limit) or an integer >= 0, found number -2'],
    ['negative max_schedulers', { max_schedulers: -5 }, 'max_schedulers', 'expected -1 (no limit) or an integer >= 0, found number -5'],
    ['wrong type: bool', { secure_mode: 'yes' }, 'secure_mode', 'expected a boolean (true or false), found "yes"'],
    ['verbosity out of range', { verbosity: 3 }, 'verbosity', 'expected an integer from 0 to 2, found number 3'],
    ['negative stopped_run_timeout', { stopped_run_timeout: -1 }, 'stopped_run_timeout', 'expected a number of seconds >= 0, found number -1'],
    ['queues not a list', { queues: 'gpu' }, 'queues', 'expected a list of queue names, found "gpu"'],
    ['queue entry not a string', { queues: ['ok', 3] }, 'queues[1]', 'expected a non-empty string, found number 3'],
    ['queue not a string', { queue: ['a'] }, 'queue', 'expected a non-empty string, found an array of 1'],
    ['project not a string', { project: 5 }, 'project', 'expected a string, found number 5'],
    ['entity empty', { entity: '' }, 'entity', 'expected a non-empty string, found ""'],
    ['bad source', { source: 'wandbb' }, 'source', 'expected one of "wandb", "embedded", found "wandbb" (did you mean "wandb"?)'],
    ['bad base_url', { base_url: 'ftp://host' }, 'base_url', 'expected an http:// or https:// URL, found "ftp://host"'],
    ['poll_interval zero', { poll_interval: 0 }, 'poll_interval', 'expected a number of seconds > 0, found number 0'],
    ['start_timeout text', { start_timeout: '30m' }, 'start_timeout', 'expected a number of seconds, found "30m"'],
    ['max_resume_count negative', { max_resume_count: -1 }, 'max_resume_count', 'expected an integer >= 0, found number -1'],
    ['kill_grace_period negative', { kill_grace_period: -3 }, 'kill_grace_period', 'expected a number of seconds >= 0, found number -3'],
    ['builder not an object', { builder: 'docker' }, 'builder', 'expected a mapping of builder keys, found "docker"'],
    ['bad builder type', { builder: { type: 'dockr' } }, 'builder.type', 'expected one of "docker", "kaniko", "noop", found "dockr" (did you mean "docker"?)'],
    ['bad platform', { builder: { platform: 'linux/386' } }, 'builder.platform', 'expected one of "linux/amd64", "linux/arm64", found "linux/386"'],
    [
      'tag in destination',
      { builder: { destination: 'https://reg.azurecr.io/launch:latest' } },
      'builder.destination',
      'expected an image repository without a tag (the agent tags each image with a hash of its source; remove ":latest"), found "https://reg.azurecr.io/launch:latest"',
    ],
    [
      'GAR destination without image name',
      { builder: { destination: 'us-central1-docker.pkg.dev/proj/repo' } },
      'builder.destination',
      'expected a Google Artifact Registry URI with an image name: <region>-docker.pkg.dev/<project>/<repository>/<image>, found "us-central1-docker.pkg.dev/proj/repo"',
    ],
    [
      'ECR destination without repository',
      { builder: { destination: '1234.dkr.ecr.eu-west-1.amazonaws.com' } },
      'builder.destination',
      'expected an Elastic Container Registry URI with a repository: <account-id>.dkr.ecr.<region>.amazonaws.com/<repository>, found "1234.dkr.ecr.eu-west-1.amazonaws.com"',
    ],
    [
      'bad context store URI',
      { builder: { 'build-context-store': 'bucket/contexts' } },
      'builder.build-context-store',
      'expected s3://<bucket>/<prefix>, gs://<bucket>/<prefix> or https://<account>.blob.core.windows.net/<container>/<prefix>, found "bucket/contexts"',
    ],
    [
      'secret-name without secret-key',
      { builder: { 'secret-name': 'creds' } },
      'builder.secret-key',
      'expected a secret-key alongside secret-name (set both or neither), found nothing',
    ],
    [
      'secret-key without secret-name',
      { builder: { 'secret-key': 'k' } },
      'builder.secret-key',
      'expected no secret-key without a secret-name (set both or neither), found "k"',
    ],
    [
      'kaniko-config with two containers',
      { builder: { 'kaniko-config': { spec: { template: { spec: { containers: [{}, {}] } } } } } },
      'builder.kaniko-config',
      'expected a partial batch/v1 Job with at most one container in spec.template.spec.containers, found an object',
    ],
    ['registry not an object', { registry: ['ecr'] }, 'registry', 'expected a mapping of registry keys, found an array of 1'],
    ['environment not an object', { environment: 'aws' }, 'environment', 'expected a mapping of environment keys, found "aws"'],
    ['bad registry type', { registry: { type: 'docker' } }, 'registry.type', 'expected one of "ecr", "acr", "gcr", "local", "oci", found "docker"'],
    [
      'registry uri with a tag',
      { registry: { type: 'oci', uri: 'localhost:5000/img:1' } },
      'registry.uri',
      'expected an image repository without a tag (the agent tags each image with a hash of its source; remove ":1"), found "localhost:5000/img:1"',
    ],
    [
      'ECR key on a GAR registry',
      { registry: { type: 'gcr', uri: 'us-docker.pkg.dev/p/r/i', account_id: '1' } },
      'registry.account_id',
      'expected no account_id for a gcr registry (it applies to ecr), found "1"',
    ],
    ['acr without uri', { registry: { type: 'acr' } }, 'registry.uri', 'expected a uri for the acr registry, found nothing'],
    [
      'ecr incomplete',
      { registry: { type: 'ecr', account_id: '1' } },
      'registry.uri',
      'expected a uri, or account_id, region and repo_name, for an ecr registry, found nothing',
    ],
    ['environment without type', { environment: { region: 'us-east-1' } }, 'environment.type', 'expected one of "aws", "gcp", "azure", "local", found nothing'],
    ['aws environment without region', { environment: { type: 'aws' } }, 'environment.region', 'expected a region for the aws environment, found nothing'],
  ])('%s', (_name, raw, path, message) => {
    expect(issueAt(raw, path).message).toBe(message);
  });

  it.each<[unknown, string, string]>([
    [{ max_job: 2 }, 'max_job', 'unknown key "max_job" (did you mean "max_jobs"?)'],
    [{ queus: ['a'] }, 'queus', 'unknown key "queus" (did you mean "queues"?)'],
    [{ builder: { build_context_store: 's3://b' } }, 'builder.build_context_store', 'unknown key "build_context_store" (did you mean "build-context-store"?)'],
    [{ builder: { kanikoimage: 'x' } }, 'builder.kanikoimage', 'unknown key "kanikoimage" (did you mean "kaniko-image"?)'],
    [{ registry: { urii: 'x' } }, 'registry.urii', 'unknown key "urii" (did you mean "uri"?)'],
    [{ completely_unrelated_thing: 1 }, 'completely_unrelated_thing', 'unknown key "completely_unrelated_thing"'],
  ])('refuses unknown key %j with a suggestion', (raw, path, message) => {
    const issue = issueAt(raw, path);
    expect(issue.message).toBe(message);
    expect(issue.expected).toBe('a known key');
  });

  it.each<[unknown, string]>([
    [['a', 'b'], 'expected a mapping of config keys, found an array of 2'],
    ['just text', 'expected a mapping of config keys, found the text "just text"'],
    [42, 'expected a mapping of config keys, found number 42'],
    [true, 'expected a mapping of config keys, found boolean true'],
  ])('refuses a document that is not a mapping: %j', (raw, message) => {
    const error = failure(raw);
    expect(error.issues).toEqual([expect.objectContaining({ path: '', message })]);
    expect(error.message).toContain(`(root): ${message}`);
  });

  it('lists every bad field in one error', () => {
    const error = failure({
      max_jobs: -7,
      verbosity: 'loud',
      buildr: {},
      builder: { type: 'podman', destination: 'r.example.com/i:v1', 'secret-name': 's' },
      environment: { type: 'aws' },
    });
    expect(error.issues.map((i) => i.path).sort()).toEqual(
      ['buildr', 'builder.destination', 'builder.secret-key', 'builder.type', 'environment.region', 'max_jobs', 'verbosity'].sort(),
    );
    for (const issue of error.issues) expect(error.message).toContain(`  - ${issue.path}: ${issue.message}`);
    expect(error.issues.find((i) => i.path === 'buildr')?.message).toBe('unknown key "buildr" (did you mean "builder"?)');
  });

  it('never shows the api_key, in any issue', () => {
    const cases: unknown[] = [
      { api_key: 42 },
      { api_key: [SECRET] },
      { api_key: SECRET, entity: 7, max_jobs: 'x' },
      // Pasted into the wrong key: still scrubbed.
      { api_key: SECRET, base_url: SECRET },
      { api_key: SECRET, builder: { destination: `r.example.com/${SECRET}:tag` } },
      { api_key: SECRET, queues: [`${SECRET}`, 4] },
    ];
    for (const raw of cases) {
      const error = failure(raw);
      expect(error.message).not.toContain(SECRET);
      expect(JSON.stringify(error.issues)).not.toContain(SECRET);
    }
    expect(issueAt({ api_key: 42 }, 'api_key').message).toBe('expected a non-empty string, found a number (secret, not shown)');
    expect(issueAt({ api_key: SECRET, base_url: SECRET }, 'base_url').message).toBe('expected an http:// or https:// URL, found "[REDACTED]"');
  });
});

describe('maxFromConfig', () => {
  it('maps -1 to Infinity and keeps non-negative integers', () => {
    expect(maxFromConfig(-1)).toBe(Infinity);
    expect(maxFromConfig(0)).toBe(0);
    expect(maxFromConfig(4)).toBe(4);
    expect(maxFromConfig(undefined)).toBe(1);
    expect(maxFromConfig(undefined, 3)).toBe(3);
  });
  it('refuses other negatives and fractions', () => {
    expect(() => maxFromConfig(-2)).toThrow('expected -1 (no limit) or an integer >= 0, found number -2');
    expect(() => maxFromConfig(1.5)).toThrow(LaunchError);
  });
});
