import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildSpec, parseEnvPairs, readSpecFile } from './spec-input.js';
import { UsageError } from './usage.js';

const none = { command: [], env: [] };

describe('buildSpec', () => {
  it('turns -- CMD ARGS into a local-process entry point with env, name, project, entity and cwd', () => {
    const { spec, warnings } = buildSpec(
      undefined,
      { command: ['python', 'train.py', '--lr', '0.1'], env: ['A=1', 'B=x=y'], cwd: 'sub', name: 'n', project: 'p', entity: 'e' },
      '/home/u',
      'enqueue',
    );
    expect(warnings).toEqual([]);
    expect(spec).toMatchObject({
      resource: 'local-process',
      overrides: { entry_point: ['python', 'train.py', '--lr', '0.1'], working_dir: '/home/u/sub' },
      env: { A: '1', B: 'x=y' },
      name: 'n',
      project: 'p',
      entity: 'e',
    });
  });

  it('lets flags override a spec file and keeps its resource', () => {
    const { spec } = buildSpec({ resource: 'kubernetes', env: { A: '1' }, name: 'old' }, { command: ['echo'], env: ['B=2'], name: 'new' }, '/', 'enqueue');
    expect(spec).toMatchObject({ resource: 'kubernetes', env: { A: '1', B: '2' }, name: 'new', overrides: { entry_point: ['echo'] } });
  });

  it('refuses an empty job and an invalid spec as usage errors naming the field', () => {
    expect(() => buildSpec(undefined, none, '/', 'enqueue')).toThrow(/nothing to run/);
    expect(() => buildSpec({ run_id: 'has space' }, none, '/', 'enqueue')).toThrow(/run_id/);
    expect(() => buildSpec(undefined, { command: ['x'], env: ['1BAD=v'] }, '/', 'enqueue')).toThrow(/env/);
  });
});

describe('buildSpec: strict specs at enqueue (exit 2)', () => {
  const refusal = (base: Record<string, unknown>, source?: string): UsageError => {
    try {
      buildSpec(base, none, '/', 'enqueue', source);
    } catch (error) {
      expect(error).toBeInstanceOf(UsageError);
      return error as UsageError;
    }
    throw new Error('expected a refusal');
  };

  it('refuses invented keys, naming the file, each field and where it belongs', () => {
    const error = refusal({ image: 'python:3.12', command: ['python', 'x.py'], job_type: 'train' }, 'job.yaml');
    expect(error.command).toBe('enqueue');
    expect(error.message).toBe(
      [
        'job.yaml: launch spec is invalid:',
        '  - image: unknown key "image": a launch spec names its image in docker.docker_image (or image_uri)',
        '  - command: unknown key "command": the command goes in overrides.entry_point (a list of strings)',
        '  - job_type: unknown key "job_type": job_type is a wandb.init setting, not a launch spec key; the job to run goes in job',
        'hint: fix the listed fields; docs/launch-spec.md lists every launch spec key',
      ].join('\n'),
    );
  });

  it('says what a sweep config or a Dagster run config is instead of listing its keys', () => {
    expect(refusal({ method: 'random', parameters: { lr: { values: [0.1] } }, program: 'train.py' }).message).toMatch(
      /^launch spec is invalid:\n {2}- \(root\): expected a launch spec, found a W&B sweep config \(method, parameters, program\): .*wandb launch-sweep/,
    );
    expect(refusal({ ops: { run_launch_job: { config: { queue: 'q', job: 'e/p/j:latest' } } } }).message).toContain(
      'found a Dagster run config (ops, resources): its launch parameters are under ops.run_launch_job.config',
    );
  });

  it('converts legacy flat Kubernetes resource_args and returns a warning per key', () => {
    const { spec, warnings } = buildSpec(
      { job: 'e/p/j:v1', resource: 'kubernetes', resource_args: { kubernetes: { tolerations: [{ key: 'gpu', operator: 'Exists' }] } } },
      none,
      '/',
      'enqueue',
    );
    expect(spec.resource_args).toEqual({ kubernetes: { spec: { template: { spec: { tolerations: [{ key: 'gpu', operator: 'Exists' }] } } } } });
    expect(warnings).toEqual([
      {
        path: 'resource_args.kubernetes.tolerations',
        message: 'converted W&B\'s legacy flat key "tolerations" to spec.template.spec.tolerations; write that form in the queue config or spec',
      },
    ]);
  });
});

describe('parseEnvPairs', () => {
  it('refuses a pair without a name', () => {
    expect(() => parseEnvPairs(['=v'], 'enqueue')).toThrow(UsageError);
    expect(() => parseEnvPairs(['novalue'], 'enqueue')).toThrow(/NAME=VALUE/);
  });
});

describe('readSpecFile', () => {
  it('reads JSON and YAML and names the file in errors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'spec-'));
    await writeFile(join(dir, 'a.json'), '{"resource":"local-process"}');
    await writeFile(join(dir, 'b.yaml'), 'resource: local-process\noverrides:\n  entry_point: [echo, hi]\n');
    await writeFile(join(dir, 'bad.yaml'), 'a: [1,\n');
    await writeFile(join(dir, 'list.json'), '[1]');
    expect(await readSpecFile(join(dir, 'a.json'), 'enqueue')).toEqual({ resource: 'local-process' });
    expect(await readSpecFile(join(dir, 'b.yaml'), 'enqueue')).toEqual({ resource: 'local-process', overrides: { entry_point: ['echo', 'hi'] } });
    await expect(readSpecFile(join(dir, 'bad.yaml'), 'enqueue')).rejects.toThrow(/bad\.yaml is not valid YAML/);
    await expect(readSpecFile(join(dir, 'list.json'), 'enqueue')).rejects.toThrow(/must hold an object/);
    await expect(readSpecFile(join(dir, 'missing.json'), 'enqueue')).rejects.toThrow(/ENOENT/);
  });
});
