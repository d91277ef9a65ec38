import { describe, expect, it } from 'vitest';
import { parseDockerIgnore } from './ignore.js';

describe('.dockerignore matcher (docker CLI semantics)', () => {
  const matches = (patterns: string, path: string) => parseDockerIgnore(patterns).ignores(path);

  it('matches names, wildcards that stay within one directory, and ?', () => {
    expect(matches('secret.txt', 'secret.txt')).toBe(true);
    expect(matches('secret.txt', 'sub/secret.txt')).toBe(false); // anchored at the context root
    expect(matches('*.log', 'a.log')).toBe(true);
    expect(matches('*.log', 'logs/a.log')).toBe(false);
    expect(matches('*/*.log', 'logs/a.log')).toBe(true);
    expect(matches('file?.txt', 'file1.txt')).toBe(true);
    expect(matches('file?.txt', 'file10.txt')).toBe(false);
    expect(matches('[ab].txt', 'b.txt')).toBe(true);
    expect(matches('[ab].txt', 'c.txt')).toBe(false);
  });

  it('lets ** cross any number of directories', () => {
    expect(matches('**/*.pyc', 'a.pyc')).toBe(true);
    expect(matches('**/*.pyc', 'pkg/sub/a.pyc')).toBe(true);
    expect(matches('**/__pycache__', 'pkg/__pycache__/a.pyc')).toBe(true);
    expect(matches('data/**', 'data/x/y')).toBe(true);
    expect(matches('data/**', 'database')).toBe(false);
  });

  it('excludes everything under a matched directory', () => {
    expect(matches('node_modules', 'node_modules/x/index.js')).toBe(true);
    expect(matches('build/', 'build/out/a.o')).toBe(true);
    expect(matches('/build', 'build/a.o')).toBe(true);
  });

  it('re-includes with ! and lets the last matching pattern win', () => {
    const ignore = parseDockerIgnore('*.md\n!README.md\n');
    expect(ignore.ignores('CHANGES.md')).toBe(true);
    expect(ignore.ignores('README.md')).toBe(false);
    expect(parseDockerIgnore('!README.md\n*.md').ignores('README.md')).toBe(true);
  });

  it('skips comments and blank lines, trims, cleans paths and drops a BOM', () => {
    const ignore = parseDockerIgnore('\uFEFF# comment\n\n   ./a//b/../c.txt   \r\n');
    expect(ignore.patterns).toEqual(['./a//b/../c.txt']);
    expect(ignore.ignores('a/c.txt')).toBe(true);
    expect(ignore.ignores('# comment')).toBe(false);
  });

  it('treats a backslash as an escape and is case-sensitive', () => {
    expect(matches('\\*.txt', '*.txt')).toBe(true);
    expect(matches('\\*.txt', 'a.txt')).toBe(false);
    expect(matches('Secret', 'secret')).toBe(false);
  });

  it('says which excluded directories must still be walked for exceptions', () => {
    const ignore = parseDockerIgnore('logs\n!logs/keep.txt\n');
    expect(ignore.ignores('logs')).toBe(true);
    expect(ignore.ignores('logs/keep.txt')).toBe(false);
    expect(ignore.ignores('logs/other.txt')).toBe(true);
    expect(ignore.mayReinclude('logs')).toBe(true);
    expect(ignore.mayReinclude('other')).toBe(false);
    expect(parseDockerIgnore('logs').mayReinclude('logs')).toBe(false);
  });

  it('refuses an illegal pattern, naming it', () => {
    expect(() => parseDockerIgnore('a[')).not.toThrow(); // an unclosed class is literal
    expect(() => parseDockerIgnore('[z-a]')).toThrow(/illegal pattern "\[z-a\]"/);
  });
});
