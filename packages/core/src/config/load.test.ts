import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LaunchError, LaunchValidationError } from '../errors.js';
import { defaultConfigPath, loadAgentConfig, type LoadAgentConfigOptions } from './load.js';

const SECRET = 'fedcba9876543210fedcba9876543210fedcba98';

let home: string;
let dir: string;

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'launch-config-home-'));
  dir = await mkdtemp(join(tmpdir(), 'launch-config-'));
});
afterEach(async () => {
  await rm(home, { recursive: true, force: true });
  await rm(dir, { recursive: true, force: true });
});

async function file(text: string, name = 'launch-config.yaml'): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

async function writeDefault(text: string): Promise<string> {
  const path = defaultConfigPath(home);
  await mkdir(join(home, '.config', 'wandb'), { recursive: true });
  await writeFile(path, text);
  return path;
}

/** Loads with an isolated home and environment unless the options say otherwise. */
function load(options: LoadAgentConfigOptions = {}) {
  return loadAgentConfig({ homedir: home, env: {}, ...options });
}

async function rejection(options: LoadAgentConfigOptions): Promise<LaunchError> {
  const error = await load(options).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(LaunchError.isInstance(error), `expected a LaunchError, got ${String(error)}`).toBe(true);
  return error as LaunchError;
}

describe('loadAgentConfig: files', () => {
  it('uses ~/.config/wandb/launch-config.yaml by default', async () => {
    expect(defaultConfigPath('/home/u')).toBe('/home/u/.config/wandb/launch-config.yaml');
    const path = await writeDefault('entity: team\nqueues: [gpu]\n');
    const loaded = await load();
    expect(loaded.path).toBe(path);
    expect(loaded.config.entity).toBe('team');
    expect(loaded.config.queues).toEqual(['gpu']);
    expect(loaded.origins).toMatchObject({ entity: 'file', queues: 'file', max_jobs: 'default' });
  });

  it('is fine without the default file: defaults only, no path', async () => {
    const loaded = await load();
    expect(loaded.path).toBeUndefined();
    expect(loaded.config.max_jobs).toBe(1);
    expect(loaded.config.queues).toEqual([]);
    expect(Object.values(loaded.origins).every((o) => o === 'default')).toBe(true);
  });

  it('refuses a missing explicit --config file, naming the path', async () => {
    const missing = join(dir, 'nope.yaml');
    const error = await rejection({ path: missing });
    expect(error.code).toBe('config.not_found');
    expect(error.message).toBe(`config file ${missing} does not exist`);
  });

  it('reports an unreadable path (a directory) by name', async () => {
    const error = await rejection({ path: dir });
    expect(error.code).toBe('config.unreadable');
    expect(error.message).toBe(`cannot read config file ${dir}: EISDIR`);
  });

  it('reads an explicit file instead of the default one', async () => {
    await writeDefault('entity: from-default\n');
    const path = await file('entity: from-explicit\n');
    const loaded = await load({ path });
    expect(loaded.path).toBe(path);
    expect(loaded.config.entity).toBe('from-explicit');
  });

  it('treats an empty file and a comments-only file as {}', async () => {
    for (const text of ['', '# nothing here\n', '---\n']) {
      const loaded = await load({ path: await file(text) });
      expect(loaded.config).toEqual((await load()).config);
    }
  });

  it('gives a YAML syntax error with file, line and column, and no snippet of the file', async () => {
    const path = await file(`entity: team\napi_key: ${SECRET}\nqueues:\n  - a\n - b\n`);
    const error = await rejection({ path });
    expect(error.code).toBe('config.yaml');
    expect(error.message).toMatch(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5:\\d+: invalid YAML at line 5, column \\d+: `));
    expect(error.message).not.toContain(SECRET);
  });

  it('refuses duplicate keys as a YAML error with the line', async () => {
    const error = await rejection({ path: await file('max_jobs: 1\nmax_jobs: 2\n') });
    expect(error.code).toBe('config.yaml');
    expect(error.message).toContain('invalid YAML at line 2');
    expect(error.message).toContain('duplicated mapping key');
  });

  it.each([
    ['a list', '- gpu\n- cpu\n', 'expected a mapping of config keys, found an array of 2'],
    ['a scalar', 'just-a-queue-name\n', 'expected a mapping of config keys, found the text "just-a-queue-name"'],
    ['a number', '5\n', 'expected a mapping of config keys, found number 5'],
  ])('refuses a file holding %s', async (_kind, text, message) => {
    const path = await file(text);
    const error = await rejection({ path });
    expect(error).toBeInstanceOf(LaunchValidationError);
    expect(error.code).toBe('config.invalid');
    expect(error.message).toBe(`agent config ${path} is invalid:\n  - (root): ${message}`);
  });

  it('names the file in a validation error listing every bad field', async () => {
    const path = await file(
      [
        'max_jobs: -4',
        'queus: [a]',
        'builder:',
        '  type: kaniko',
        '  destination: reg.azurecr.io/launch:v2',
        '  build-context-store: /tmp/ctx',
        '  secret-name: creds',
        '',
      ].join('\n'),
    );
    const error = (await rejection({ path })) as LaunchValidationError;
    expect(error.message.split('\n')[0]).toBe(`agent config ${path} is invalid:`);
    expect(error.issues.map((i) => i.path).sort()).toEqual(
      ['builder.build-context-store', 'builder.destination', 'builder.secret-key', 'max_jobs', 'queus'].sort(),
    );
    expect(error.message).toContain('  - queus: unknown key "queus" (did you mean "queues"?)');
    expect(error.message).toContain('  - max_jobs: expected -1 (no limit) or an integer >= 0, found number -4');
  });

  it('reads YAML 1.2: `yes` is a string, refused for a boolean key', async () => {
    const path = await file('secure_mode: yes\n');
    const error = (await rejection({ path })) as LaunchValidationError;
    expect(error.issues).toEqual([expect.objectContaining({ path: 'secure_mode', message: 'expected a boolean (true or false), found "yes"' })]);
    expect((await load({ path: await file('secure_mode: true\n', 'ok.yaml') })).config.secure_mode).toBe(true);
  });

  it('expands ~ in state_dir and log_file', async () => {
    const loaded = await load({ path: await file('state_dir: ~/launch-state\nlog_file: ~/agent.log\n') });
    expect(loaded.config.state_dir).toBe(join(home, 'launch-state'));
    expect(loaded.config.log_file).toBe(join(home, 'agent.log'));
  });

  it('expands ~ in an explicit --config path', async () => {
    await writeFile(join(home, 'cfg.yaml'), 'entity: tilde\n');
    expect((await load({ path: '~/cfg.yaml' })).config.entity).toBe('tilde');
  });

  it('reports where every value came from, nested keys included', async () => {
    const path = await file('entity: team\nbuilder:\n  type: docker\nenvironment:\n  type: aws\n  region: eu-west-1\n');
    const loaded = await load({ path, env: { WANDB_LAUNCH_MAX_JOBS: '3' }, flags: { verbosity: 1 } });
    expect(loaded.origins).toEqual({
      entity: 'file',
      queues: 'default',
      max_jobs: 'env',
      max_schedulers: 'default',
      secure_mode: 'default',
      verbosity: 'flag',
      stopped_run_timeout: 'default',
      'builder.type': 'file',
      'builder.build-job-name': 'default',
      'builder.kaniko-image': 'default',
      'environment.type': 'file',
      'environment.region': 'file',
      start_timeout: 'default',
      max_resume_count: 'default',
      kill_grace_period: 'default',
    });
  });

  it('warns about the ignored project key and an unrecognised registry host', async () => {
    const path = await file('project: p\nbuilder:\n  type: docker\n  destination: registry.example.com/team/image\n');
    const loaded = await load({ path });
    expect(loaded.warnings).toEqual([
      `${path}: project is ignored by the agent (W&B drops it too); the project comes from each job`,
      'builder.destination: registry host "registry.example.com" is not ECR, GAR or ACR; make sure the agent can push images there',
    ]);
    const ours = await load({ path: await file('registry:\n  type: oci\n  uri: localhost:5000/launch\n', 'oci.yaml') });
    expect(ours.warnings).toEqual([]);
  });
});

describe('loadAgentConfig: precedence defaults < file < env < flags', () => {
  it('lets env override the file and flags override env', async () => {
    const path = await file('entity: file-entity\nmax_jobs: 2\nstart_timeout: 100\nstate_dir: /file/state\nsource: wandb\n');
    const env = { WANDB_ENTITY: 'env-entity', WANDB_LAUNCH_MAX_JOBS: '5', LAUNCH_STATE_DIR: '/env/state' };

    const fileOnly = await load({ path });
    expect(fileOnly.config).toMatchObject({ entity: 'file-entity', max_jobs: 2, start_timeout: 100, state_dir: '/file/state' });

    const withEnv = await load({ path, env });
    expect(withEnv.config).toMatchObject({ entity: 'env-entity', max_jobs: 5, start_timeout: 100, state_dir: '/env/state' });
    expect(withEnv.origins).toMatchObject({ entity: 'env', max_jobs: 'env', start_timeout: 'file', state_dir: 'env' });

    const withFlags = await load({
      path,
      env,
      flags: { entity: 'flag-entity', maxJobs: '-1', stateDir: '/flag/state', source: 'embedded', logFile: '-', verbosity: 2 },
    });
    expect(withFlags.config).toMatchObject({
      entity: 'flag-entity',
      max_jobs: -1,
      state_dir: '/flag/state',
      source: 'embedded',
      log_file: '-',
      verbosity: 2,
      start_timeout: 100,
    });
    expect(withFlags.origins).toMatchObject({ entity: 'flag', max_jobs: 'flag', state_dir: 'flag', source: 'flag', log_file: 'flag', verbosity: 'flag' });
  });

  it('reads every environment variable', async () => {
    const loaded = await load({
      env: {
        WANDB_ENTITY: 'e',
        WANDB_LAUNCH_MAX_JOBS: ' 4 ',
        WANDB_LAUNCH_START_TIMEOUT: '0',
        WANDB_BASE_URL: 'http://localhost:8080',
        WANDB_API_KEY: SECRET,
        LAUNCH_STATE_DIR: '/state',
      },
    });
    expect(loaded.config).toMatchObject({
      entity: 'e',
      max_jobs: 4,
      start_timeout: 0,
      base_url: 'http://localhost:8080',
      api_key: SECRET,
      state_dir: '/state',
    });
    for (const key of ['entity', 'max_jobs', 'start_timeout', 'base_url', 'api_key', 'state_dir']) expect(loaded.origins[key]).toBe('env');
  });

  it('ignores empty environment variables', async () => {
    const path = await file('entity: kept\n');
    expect((await load({ path, env: { WANDB_ENTITY: '', WANDB_LAUNCH_MAX_JOBS: '' } })).config).toMatchObject({ entity: 'kept', max_jobs: 1 });
  });

  it('makes -q replace queues, then appends queue without duplicates', async () => {
    const path = await file('queues: [a, b]\nqueue: c\n');
    expect((await load({ path })).config.queues).toEqual(['a', 'b', 'c']);
    const flagged = await load({ path, flags: { queues: ['x', 'c'] } });
    expect(flagged.config.queues).toEqual(['x', 'c']);
    expect(flagged.origins['queues']).toBe('flag');
    expect((await load({ path, flags: { queues: ['x'] } })).config.queues).toEqual(['x', 'c']);
    // No -q given (an empty list from the CLI parser) keeps the file's queues.
    expect((await load({ path, flags: { queues: [] } })).config.queues).toEqual(['a', 'b', 'c']);
    const onlyQueue = await load({ path: await file('queue: solo\n', 'solo.yaml') });
    expect(onlyQueue.config.queues).toEqual(['solo']);
    expect(onlyQueue.origins['queues']).toBe('file');
  });

  it('uses the default file when no --config is given, under env and flags', async () => {
    await writeDefault('entity: default-file\nmax_jobs: 9\n');
    const loaded = await load({ env: { WANDB_LAUNCH_MAX_JOBS: '2' } });
    expect(loaded.config).toMatchObject({ entity: 'default-file', max_jobs: 2 });
  });
});

describe('loadAgentConfig: malformed environment and flags', () => {
  it.each<[Record<string, string>, string, string]>([
    [{ WANDB_LAUNCH_MAX_JOBS: 'abc' }, '$WANDB_LAUNCH_MAX_JOBS', 'expected -1 (no limit) or an integer >= 0, found "abc" (sets max_jobs)'],
    [{ WANDB_LAUNCH_MAX_JOBS: '2.5' }, '$WANDB_LAUNCH_MAX_JOBS', 'expected -1 (no limit) or an integer >= 0, found "2.5" (sets max_jobs)'],
    [{ WANDB_LAUNCH_MAX_JOBS: '-3' }, '$WANDB_LAUNCH_MAX_JOBS', 'expected -1 (no limit) or an integer >= 0, found number -3 (sets max_jobs)'],
    [{ WANDB_LAUNCH_START_TIMEOUT: '30m' }, '$WANDB_LAUNCH_START_TIMEOUT', 'expected a number of seconds, found "30m" (sets start_timeout)'],
    [{ WANDB_BASE_URL: 'wandb.example.com' }, '$WANDB_BASE_URL', 'expected an http:// or https:// URL, found "wandb.example.com" (sets base_url)'],
  ])('names the variable for %j', async (env, path, message) => {
    const error = (await rejection({ env })) as LaunchValidationError;
    expect(error.code).toBe('config.invalid');
    expect(error.issues).toEqual([expect.objectContaining({ path, message })]);
    expect(error.message).toContain(`  - ${path}: ${message}`);
  });

  it.each<[LoadAgentConfigOptions['flags'], string, string]>([
    [{ maxJobs: 'lots' }, '--max-jobs', 'expected -1 (no limit) or an integer >= 0, found "lots" (sets max_jobs)'],
    [{ maxJobs: -2 }, '--max-jobs', 'expected -1 (no limit) or an integer >= 0, found number -2 (sets max_jobs)'],
    [{ verbosity: 5 }, '--verbose', 'expected an integer from 0 to 2, found number 5 (sets verbosity)'],
    [{ source: 'sqs' }, '--source', 'expected one of "wandb", "embedded", found "sqs" (sets source)'],
    [{ queues: ['ok', ''] }, '--queue', 'expected a non-empty string, found "" (sets queues[1])'],
  ])('names the flag for %j', async (flags, path, message) => {
    const error = (await rejection({ flags })) as LaunchValidationError;
    expect(error.issues).toEqual([expect.objectContaining({ path, message })]);
  });

  it('lists file, environment and flag problems in one error', async () => {
    const path = await file('verbosity: 9\n');
    const error = (await rejection({ path, env: { WANDB_LAUNCH_MAX_JOBS: 'x' }, flags: { source: 'nope' } })) as LaunchValidationError;
    expect(error.issues.map((i) => i.path)).toEqual(['verbosity', '$WANDB_LAUNCH_MAX_JOBS', '--source']);
    expect(error.message.split('\n')[0]).toBe(`agent config ${path} is invalid:`);
  });

  it('never prints the API key from the file or the environment', async () => {
    const path = await file(`api_key: ${SECRET}\nentity: ${SECRET}x\nbase_url: ${SECRET}\nmax_jobs: nope\n`);
    const error = await rejection({ path, env: { WANDB_API_KEY: SECRET, WANDB_BASE_URL: `${SECRET}` } });
    expect(error.message).toContain('base_url');
    expect(error.message).not.toContain(SECRET);
    expect(JSON.stringify((error as LaunchValidationError).issues)).not.toContain(SECRET);

    const keyOnly = await rejection({ env: { WANDB_API_KEY: SECRET, WANDB_BASE_URL: `http://h/?k=${SECRET}`, WANDB_LAUNCH_MAX_JOBS: 'x' } });
    expect(keyOnly.message).not.toContain(SECRET);
  });
});

describe('loadAgentConfig: Helm values files', () => {
  const values = (launchConfig: string, extra = '') =>
    `agent:\n  apiKey: ""\nnamespace: wandb\n${extra}launchConfig: |\n${launchConfig.replace(/^/gm, '  ')}\n`;

  it('refuses a values file given as the config and says to pass its launchConfig', async () => {
    const path = await file(values('queues: [gpu]'), 'values.yaml');
    const error = await rejection({ path });
    expect(error).toBeInstanceOf(LaunchValidationError);
    expect((error as LaunchValidationError).issues.map((i) => i.message)).toEqual([
      'expected an agent config, found a Helm values file of the launch-agent chart (top-level agent, namespace, launchConfig): the agent config is the text under launchConfig; save it to a file and pass that, or check it in place with `launch-agent config check --from-values FILE`',
    ]);
  });

  it('checks the config under launchConfig with helmValues, naming it in errors', async () => {
    const good = await load({ path: await file(values('entity: acme\nqueues: [gpu]\nbuilder:\n  type: noop'), 'good.yaml'), helmValues: true });
    expect(good.config).toMatchObject({ entity: 'acme', queues: ['gpu'], builder: { type: 'noop' } });

    const badPath = await file(values('entity: <W_B_ENTITY>\nqueues: [gpu]'), 'bad.yaml');
    const bad = await rejection({ path: badPath, helmValues: true });
    expect(bad.message).toBe(
      `launchConfig in ${badPath} is invalid:\n  - entity: entity is still the placeholder <W_B_ENTITY>: put your W&B entity (team or user name) here`,
    );
  });

  it("counts the chart's kanikoPvcName as the PVC kaniko needs", async () => {
    const kaniko = values('queues: [q]\nbuilder:\n  type: kaniko');
    await expect(rejection({ path: await file(kaniko, 'k1.yaml'), helmValues: true })).resolves.toMatchObject({ code: 'config.invalid' });
    const loaded = await load({
      path: await file(values('queues: [q]\nbuilder:\n  type: kaniko', 'kanikoPvcName: kaniko-pvc\n'), 'k2.yaml'),
      helmValues: true,
    });
    expect(loaded.config.builder?.type).toBe('kaniko');
  });

  it('refuses an empty launchConfig, bad YAML inside it, and a file that is no values file', async () => {
    const empty = await rejection({ path: await file('agent:\n  apiKey: ""\nlaunchConfig: ""\n', 'e.yaml'), helmValues: true });
    expect(empty.message).toContain(
      "launchConfig: expected the agent config's text (launchConfig: | followed by the config), found nothing: the agent would start with no queue",
    );
    const yamlPath = await file(values('queues: [a,\n'), 'y.yaml');
    const yamlError = await rejection({ path: yamlPath, helmValues: true });
    expect(yamlError.code).toBe('config.yaml');
    expect(yamlError.message).toMatch(
      new RegExp(`^${yamlPath.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: launchConfig is not valid YAML at its line \\d+, column \\d+: `),
    );
    const plain = await rejection({ path: await file('queues: [a]\n', 'p.yaml'), helmValues: true });
    expect(plain.message).toContain('found no chart keys; is it the agent config itself? Then drop --from-values');
  });

  it('returns warnings with the file named, and checks kaniko against the environment', async () => {
    const path = await file('queues: [q]\nenvironment:\n  type: gcp\n  region: us-central1\n  project: p\nbuilder:\n  type: kaniko\n');
    await expect(rejection({ path })).resolves.toMatchObject({ code: 'config.invalid' });
    const loaded = await load({ path, env: { WANDB_LAUNCH_KANIKO_PVC_NAME: 'pvc' } });
    expect(loaded.warnings).toEqual([
      'environment.project: ignored: the Google Cloud project comes from the credentials (as in W&B, which warns about it too)',
    ]);
  });
});
