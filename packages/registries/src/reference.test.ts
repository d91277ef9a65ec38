import { describe, expect, it } from 'vitest';
import { LaunchError } from '@launch/core';
import { formatImageReference, isLoopbackHost, parseImageReference } from './reference.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

function failure(input: string): LaunchError {
  try {
    parseImageReference(input);
  } catch (error) {
    expect(LaunchError.isInstance(error)).toBe(true);
    expect((error as LaunchError).code).toBe('registry.invalid_reference');
    return error as LaunchError;
  }
  throw new Error(`expected ${input} to be refused`);
}

describe('parseImageReference', () => {
  it.each([
    ['127.0.0.1:5000/launch:v1', { registry: '127.0.0.1:5000', host: '127.0.0.1', port: 5000, repository: 'launch', tag: 'v1' }],
    ['localhost/team/app', { registry: 'localhost', host: 'localhost', repository: 'team/app' }],
    ['ghcr.io/acme/train@' + DIGEST, { registry: 'ghcr.io', host: 'ghcr.io', repository: 'acme/train', digest: DIGEST }],
    ['ghcr.io/acme/train:1.2@' + DIGEST, { registry: 'ghcr.io', repository: 'acme/train', tag: '1.2', digest: DIGEST }],
    ['python:3.12', { registry: 'docker.io', host: 'docker.io', repository: 'library/python', tag: '3.12' }],
    ['acme/app', { registry: 'docker.io', repository: 'acme/app' }],
    ['index.docker.io/acme/app:x', { registry: 'docker.io', repository: 'acme/app', tag: 'x' }],
    ['https://reg.example.com:8443/a/b/c', { registry: 'reg.example.com:8443', port: 8443, repository: 'a/b/c', scheme: 'https' }],
    ['Reg.Example.COM/a', { registry: 'reg.example.com', host: 'reg.example.com', repository: 'a' }],
    ['r.io/a__b/c-d--e/f.g_h:_T.x-1', { repository: 'a__b/c-d--e/f.g_h', tag: '_T.x-1' }],
  ])('parses %s', (input, expected) => {
    expect(parseImageReference(input)).toMatchObject(expected);
  });

  it('formats back to the canonical text', () => {
    expect(formatImageReference(parseImageReference('https://127.0.0.1:5000/launch:v1'))).toBe('127.0.0.1:5000/launch:v1');
    expect(formatImageReference(parseImageReference('python'))).toBe('docker.io/library/python');
  });

  it('refuses upper-case repository paths, naming the component and the character', () => {
    const error = failure('127.0.0.1:5000/Team/app:v1');
    expect(error.message).toContain('"Team"');
    expect(error.message).toContain('"T" at position 1');
  });

  it('refuses invalid tag characters, naming the tag and what was found', () => {
    const error = failure('127.0.0.1:5000/launch:v1+build');
    expect(error.message).toContain('tag "v1+build"');
    expect(error.message).toContain('"+" at position 3');
    expect(failure('r.io/a:.hidden').message).toContain('tag ".hidden"');
    expect(failure('r.io/a:').message).toContain('is empty');
    expect(failure(`r.io/a:${'x'.repeat(129)}`).message).toContain('129 characters');
  });

  it('refuses bad separators, empty components, whitespace, bad ports, hosts and digests', () => {
    expect(failure('r.io/a--/b').message).toContain('"a--"');
    expect(failure('r.io/a//b').message).toContain('empty component');
    expect(failure('r.io/a/').message).toContain('empty component');
    expect(failure('r.io/my app').message).toContain('whitespace');
    expect(failure('r.io:99999/a').message).toContain('port "99999"');
    expect(failure('r.io:http/a').message).toContain('port "http"');
    expect(failure('-bad.io/a').message).toContain('label "-bad"');
    expect(failure('bad_host.io/a').message).toContain('"_"');
    expect(failure('r.io/a@sha256:xyz').message).toContain('digest "sha256:xyz"');
    expect(failure('ftp://r.io/a').message).toContain('scheme "ftp"');
    expect(failure('').message).toContain('empty');
    expect(failure('127.0.0.1:5000').message).toContain('names only a registry host');
    expect(failure(`r.io/${'a'.repeat(260)}`).message).toContain('at most 255');
  });

  it('never echoes a huge input in full', () => {
    const error = failure(`r.io/${'A'.repeat(5000)}`);
    expect(error.message.length).toBeLessThan(1000);
    expect(error.message).toContain('(5005 characters)');
  });
});

describe('isLoopbackHost', () => {
  it('knows loopback names and addresses', () => {
    expect(isLoopbackHost('127.0.0.1')).toBe(true);
    expect(isLoopbackHost('127.1.2.3')).toBe(true);
    expect(isLoopbackHost('localhost')).toBe(true);
    expect(isLoopbackHost('128.0.0.1')).toBe(false);
    expect(isLoopbackHost('127.0.0.1.evil.com')).toBe(false);
  });
});
