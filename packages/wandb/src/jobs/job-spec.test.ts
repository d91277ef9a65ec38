import { LaunchError } from '@launch/core';
import { describe, expect, it } from 'vitest';
import { checkEntryPoint, parseJobJson, parseJobName } from './job-spec.js';
import { displayRemote } from './git.js';
import { manifestDigest, parseManifest, unsafePathReason } from './manifest.js';

const caught = (fn: () => unknown): LaunchError => {
  try {
    fn();
  } catch (error) {
    if (LaunchError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected a LaunchError');
};

describe('parseJobName', () => {
  it('splits entity/project/name:alias and fills missing parts from the spec', () => {
    expect(parseJobName('acme/vision/train:latest', {})).toEqual({ entity: 'acme', project: 'vision', name: 'train', alias: 'latest' });
    expect(parseJobName('vision/train:v3', { entity: 'acme' })).toEqual({ entity: 'acme', project: 'vision', name: 'train', alias: 'v3' });
    expect(parseJobName('train:prod', { entity: 'acme', project: 'nlp' })).toEqual({ entity: 'acme', project: 'nlp', name: 'train', alias: 'prod' });
  });

  it('refuses a name without alias, without entity/project, or with odd parts, naming the job', () => {
    const noAlias = caught(() => parseJobName('acme/vision/train', {}));
    expect(noAlias.code).toBe('wandb.job_name_invalid');
    expect(noAlias.stage).toBe('agent');
    expect(noAlias.message).toContain('"acme/vision/train"');
    expect(noAlias.hint).toContain('acme/vision/train:latest');
    expect(caught(() => parseJobName('train:v1', { entity: 'acme' })).message).toMatch(/no project/);
    expect(caught(() => parseJobName('vision/train:v1', {})).message).toMatch(/no entity/);
    expect(caught(() => parseJobName('a/b/c/d:v1', {})).message).toMatch(/more than three/);
    expect(caught(() => parseJobName('acme/vision/tr ain:v1', {})).message).toMatch(/name/);
    expect(caught(() => parseJobName('acme/vision/train:', {})).message).toMatch(/alias/);
  });
});

describe('parseJobJson', () => {
  it('accepts the three job types as W&B writes them', () => {
    const repo = parseJobJson(
      JSON.stringify({
        source_type: 'repo',
        source: { git: { remote: 'https://github.com/a/b.git', commit: 'abc' }, entrypoint: ['python', 'train.py'] },
        runtime: '3.10',
        input_types: { a: 1 },
      }),
      'j',
    );
    expect(repo.source_type).toBe('repo');
    expect(parseJobJson(JSON.stringify({ source_type: 'image', source: { image: 'busybox:1' } }), 'j').source_type).toBe('image');
    expect(
      parseJobJson(JSON.stringify({ source_type: 'artifact', source: { artifact: 'wandb-artifact://_id/QXJ0', entrypoint: null } }), 'j').source_type,
    ).toBe('artifact');
  });

  it('refuses text that is not JSON, an unknown source_type and missing fields, naming the job and the field', () => {
    const notJson = caught(() => parseJobJson('{"source_type": "repo",', 'acme/p/train:v2'));
    expect(notJson.code).toBe('wandb.job_invalid');
    expect(notJson.stage).toBe('agent');
    expect(notJson.message).toContain('acme/p/train:v2');
    expect(notJson.message).toContain('not JSON');
    const unknown = caught(() => parseJobJson(JSON.stringify({ source_type: 'notebook-server', source: {} }), 'acme/p/train:v2'));
    expect(unknown.message).toContain('source_type');
    expect(unknown.message).toContain('repo, artifact, image');
    expect(unknown.message).toContain('"notebook-server"');
    const noCommit = caught(() => parseJobJson(JSON.stringify({ source_type: 'repo', source: { git: { remote: 'https://x/y.git' } } }), 'acme/p/train:v2'));
    expect(noCommit.message).toContain('source.git.commit');
    const noImage = caught(() => parseJobJson(JSON.stringify({ source_type: 'image', source: {} }), 'j'));
    expect(noImage.message).toContain('source.image');
    const badEntry = caught(() => parseJobJson(JSON.stringify({ source_type: 'image', source: { image: 'x', entrypoint: 'python train.py' } }), 'j'));
    expect(badEntry.message).toContain('source.entrypoint');
    expect(caught(() => parseJobJson('[1,2]', 'j')).message).toContain('expected an object');
  });
});

describe('checkEntryPoint', () => {
  it('accepts scripts inside the code and an absolute interpreter', () => {
    expect(() => checkEntryPoint(['python', 'train.py'], 'j')).not.toThrow();
    expect(() => checkEntryPoint(['/usr/bin/python3', 'src/./pkg/../train.py'], 'j')).not.toThrow();
    expect(() => checkEntryPoint([], 'j')).not.toThrow();
  });

  it('refuses a script that climbs out or is absolute, and a relative program that climbs out', () => {
    for (const ep of [['python', '../x.py'], ['python', '/etc/x.py'], ['python', 'src/../../x.py'], ['../bin/run']]) {
      const e = caught(() => checkEntryPoint(ep, 'acme/p/train:v1'));
      expect(e.code).toBe('wandb.job_entrypoint_escapes');
      expect(e.stage).toBe('agent');
      expect(e.message).toContain('acme/p/train:v1');
    }
  });
});

describe('parseManifest', () => {
  const entry = { digest: '1B2M2Y8AsgTpgAmY7PhCfg==', size: 0 };
  const manifest = (contents: Record<string, unknown>) =>
    JSON.stringify({ version: 1, storagePolicy: 'wandb-storage-policy-v1', storagePolicyConfig: {}, contents });

  it('checks the entries against the version digest', () => {
    const entries = [{ path: 'a.py', ...entry }];
    expect(parseManifest(manifest({ 'a.py': entry }), { qualifiedName: 'e/p/c:v0', digest: manifestDigest(entries) })).toEqual(entries);
    expect(caught(() => parseManifest(manifest({ 'a.py': entry }), { qualifiedName: 'e/p/c:v0', digest: 'ffff' })).message).toMatch(
      /hash to .* digest as ffff/,
    );
  });

  it('refuses paths that leave the directory, references and bad digests', () => {
    for (const path of ['../x', '/etc/passwd', 'a/../../x', 'a\\b', 'a//b', '']) expect(unsafePathReason(path)).toBeDefined();
    const digest = (paths: string[]) => manifestDigest(paths.map((p) => ({ path: p, ...entry })));
    expect(caught(() => parseManifest(manifest({ '../evil': entry }), { qualifiedName: 'q', digest: digest(['../evil']) })).message).toContain("'..' segment");
    expect(
      caught(() => parseManifest(manifest({ x: { ...entry, ref: 's3://bucket/x?sig=1' } }), { qualifiedName: 'q', digest: digest(['x']) })).message,
    ).toContain('s3://bucket/x');
    expect(caught(() => parseManifest(manifest({ x: { digest: 'nope', size: 1 } }), { qualifiedName: 'q', digest: 'x' })).message).toContain('base64 MD5');
    expect(caught(() => parseManifest(manifest({ a: entry, 'a/b': entry }), { qualifiedName: 'q', digest: digest(['a', 'a/b']) })).message).toContain(
      'also the directory',
    );
    expect(caught(() => parseManifest('<html>', { qualifiedName: 'q', digest: 'x' })).message).toContain('not JSON');
  });
});

describe('displayRemote', () => {
  it('hides tokens and passwords in remotes', () => {
    expect(displayRemote('https://user:tok3n-secret@github.com/a/b.git')).toBe('https://user:***@github.com/a/b.git');
    expect(displayRemote('https://ghp_abcdef123456@github.com/a/b.git')).toBe('https://***@github.com/a/b.git');
    expect(displayRemote('git@github.com:a/b.git')).toBe('git@github.com:a/b.git');
  });
});
