import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildSpec, parseEnvPairs, readSpecFile } from './spec-input.js';
import { UsageError } from './usage.js';

const none = { command: [], env: [] };

describe('buildSpec', () => {
  it('turns -- CMD ARGS into a local-process entry point with env, name, project, entity and cwd', () => {
    const spec = buildSpec(undefined, { command: ['python', 'train.py', '--lr', '0.1'], env: ['A=1', 'B=x=y'], cwd: 'sub', name: 'n', project: 'p', entity: 'e' }, '/home/u', 'enqueue');
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
    const spec = buildSpec({ resource: 'kubernetes', env: { A: '1' }, name: 'old' }, { command: ['echo'], env: ['B=2'], name: 'new' }, '/', 'enqueue');
    expect(spec).toMatchObject({ resource: 'kubernetes', env: { A: '1', B: '2' }, name: 'new', overrides: { entry_point: ['echo'] } });
  });

  it('refuses an empty job and an invalid spec as usage errors naming the field', () => {
    expect(() => buildSpec(undefined, none, '/', 'enqueue')).toThrow(/nothing to run/);
    expect(() => buildSpec({ run_id: 'has space' }, none, '/', 'enqueue')).toThrow(/run_id/);
    expect(() => buildSpec(undefined, { command: ['x'], env: ['1BAD=v'] }, '/', 'enqueue')).toThrow(/env/);
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
