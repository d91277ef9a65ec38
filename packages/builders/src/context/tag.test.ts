import { describe, expect, it } from 'vitest';
import { LaunchError } from '@launch/core';
import { contentTag, dockerSafeName, splitImageUri, validateRepository, validateTag, wandbJobSourceString, wandbTag } from './tag.js';

describe('source-hash tags', () => {
  it("computes W&B's tag exactly: sha256(source string + Dockerfile)[:8]", () => {
    // python3 -c "import hashlib; print(hashlib.sha256(('job-train:v3:vv3'+'FROM x\n').encode()).hexdigest()[:8])"
    expect(wandbTag('job-train:v3:vv3', 'FROM x\n')).toBe('55f4ea04');
  });

  it("uses W&B's source string only for jobs pinned to a version", () => {
    expect(wandbJobSourceString('acme/proj/job-train:v3')).toBe('job-train:v3:vv3');
    expect(wandbJobSourceString('job-train:v12')).toBe('job-train:v12:vv12');
    expect(wandbJobSourceString('acme/proj/job-train:latest')).toBeUndefined();
    expect(wandbJobSourceString('acme/proj/job-train')).toBeUndefined();
    expect(wandbJobSourceString(undefined)).toBeUndefined();
  });

  it('hashes Dockerfile, context digest, platform and build args into 16 hex digits', () => {
    const base = { dockerfile: 'FROM x\n', contextDigest: 'a'.repeat(64) };
    const tag = contentTag(base);
    expect(tag).toMatch(/^[0-9a-f]{16}$/);
    expect(contentTag({ ...base })).toBe(tag);
    expect(contentTag({ ...base, dockerfile: 'FROM y\n' })).not.toBe(tag);
    expect(contentTag({ ...base, contextDigest: 'b'.repeat(64) })).not.toBe(tag);
    expect(contentTag({ ...base, platform: 'linux/arm64' })).not.toBe(tag);
    expect(contentTag({ ...base, buildArgs: { A: '1', B: '2' } })).toBe(contentTag({ ...base, buildArgs: { B: '2', A: '1' } }));
    expect(contentTag({ ...base, buildArgs: { A: '1' } })).not.toBe(tag);
  });

  it("names images from the job as W&B's make_docker_image_name_safe does", () => {
    expect(dockerSafeName('acme/My Project/job-train')).toBe('acme__my__project__job-train');
    expect(dockerSafeName('--weird..name--')).toBe('weird__name');
    expect(dockerSafeName('///')).toBe('launch-image');
  });

  it('refuses repositories and tags with invalid characters, naming the field and value', () => {
    expect(validateRepository('127.0.0.1:5000/launch/train', 'builder.destination')).toBe('127.0.0.1:5000/launch/train');
    expect(validateRepository('registry.example.com/a_b/c-d.e', 'x')).toBe('registry.example.com/a_b/c-d.e');
    for (const [repo, problem] of [
      ['registry.example.com/Team/Train', 'is not a valid repository'],
      ['registry.example.com/team train', 'is not a valid repository'],
      ['registry.example.com/team/train:latest', 'carries a tag or digest'],
      ['team/train@sha256:abc', 'carries a tag or digest'],
      ['a/'.repeat(130) + 'b', 'longer than 255'],
    ] as const) {
      let error: unknown;
      try {
        validateRepository(repo, 'builder.destination');
      } catch (e) {
        error = e;
      }
      expect(LaunchError.isInstance(error)).toBe(true);
      expect(error).toMatchObject({ code: 'build.invalid_image_name', stage: 'build' });
      expect((error as LaunchError).message).toContain('builder.destination');
      expect((error as LaunchError).message).toContain(problem);
    }
    expect(() => validateTag('v1.2_3-x', 'tag')).not.toThrow();
    expect(() => validateTag('-bad', 'tag')).toThrow(/tag "-bad" is not a valid tag/);
    expect(() => validateTag('a/b', 'tag')).toThrow(/not a valid tag/);
  });

  it('splits an image at the tag, not at a registry port', () => {
    expect(splitImageUri('127.0.0.1:5000/launch:abc')).toEqual({ repository: '127.0.0.1:5000/launch', tag: 'abc' });
    expect(splitImageUri('127.0.0.1:5000/launch')).toEqual({ repository: '127.0.0.1:5000/launch', tag: undefined });
  });
});
