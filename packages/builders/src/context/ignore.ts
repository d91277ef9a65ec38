import { posix } from 'node:path';

/**
 * A `.dockerignore` matcher with Docker's semantics (moby `fileutils.PatternMatcher` as the docker
 * CLI uses it to build a context): patterns are cleaned like Go's `filepath.Clean`, a leading `/`
 * is dropped, `*` and `?` never cross `/`, `**` crosses any number of directories, `\` escapes the
 * next character, a pattern that matches a parent directory matches everything under it, `!`
 * re-includes, and the last matching pattern wins. Matching is case-sensitive (Linux).
 *
 * Written here rather than taken from `@balena/dockerignore` (which follows the same moby code)
 * because that library caches every path it is asked about, so memory grows with the tree, and
 * it cannot say whether an excluded directory may be skipped without walking it.
 */
export interface DockerIgnore {
  /** The patterns as written, in order (empty when there is no `.dockerignore`). */
  readonly patterns: readonly string[];
  /** Whether `path` (relative to the context root, `/`-separated, no leading `./`) is excluded. */
  ignores(path: string): boolean;
  /**
   * Whether an excluded directory must still be walked because an exception (`!pattern`) could
   * re-include something under it (moby's rule: an exception whose text starts with `dir/`).
   */
  mayReinclude(dir: string): boolean;
}

interface Rule {
  text: string;
  negative: boolean;
  regexp: RegExp;
  /** Path segments of the pattern, for matching parent directories. */
  segments: number;
  doubleStar: boolean;
}

/** Go's `filepath.Clean` for `/`-separated paths. */
function clean(path: string): string {
  if (path === '') return '.';
  const normal = posix.normalize(path);
  return normal.length > 1 && normal.endsWith('/') ? normal.slice(0, -1) : normal;
}

function compile(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') i++;
        re += i + 1 >= pattern.length ? '.*' : '(.*/)?';
      } else {
        re += '[^/]*';
      }
    } else if (ch === '?') {
      re += '[^/]';
    } else if (ch === '\\') {
      const next = pattern[i + 1];
      if (next === undefined) re += '\\\\';
      else {
        re += next.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
        i++;
      }
    } else if (ch === '[') {
      // Character classes as in filepath.Match: `[abc]`, `[a-z]`, `[^a]`; an unclosed one is literal.
      const close = pattern.indexOf(']', i + 2);
      if (close === -1) re += '\\[';
      else {
        re += `[${pattern.slice(i + 1, close).replace(/\\/g, '\\\\')}]`;
        i = close;
      }
    } else {
      re += ch.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    }
  }
  return new RegExp(`${re}$`);
}

/** Parses `.dockerignore` text (moby `dockerignore.ReadAll`). */
export function parseDockerIgnore(text: string): DockerIgnore {
  const rules: Rule[] = [];
  const written: string[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (const line of lines) {
    if (line.startsWith('#')) continue;
    let pattern = line.trim();
    if (pattern === '') continue;
    const negative = pattern.startsWith('!');
    if (negative) pattern = pattern.slice(1).trim();
    if (pattern.length > 0) {
      pattern = clean(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    if (pattern === '') continue;
    let regexp: RegExp;
    try {
      regexp = compile(pattern);
    } catch (error) {
      throw new Error(`illegal pattern ${JSON.stringify(line.trim())}: ${(error as Error).message}`);
    }
    written.push(line.trim());
    rules.push({
      text: pattern,
      negative,
      regexp,
      segments: pattern.split('/').length,
      doubleStar: pattern.split('/').includes('**'),
    });
  }
  return makeMatcher(rules, written);
}

/** A matcher that excludes nothing. */
export const emptyDockerIgnore: DockerIgnore = parseDockerIgnore('');

function makeMatcher(rules: Rule[], written: string[]): DockerIgnore {
  const exceptions = rules.filter((r) => r.negative).map((r) => r.text);
  return {
    patterns: written,
    ignores(path: string): boolean {
      if (rules.length === 0) return false;
      const file = clean(path);
      const parent = posix.dirname(file);
      const parentDirs = parent === '.' ? [] : parent.split('/');
      let excluded = false;
      for (const rule of rules) {
        let match = rule.regexp.test(file);
        if (!match && parentDirs.length > 0) {
          if (rule.doubleStar) {
            // `**` may stand for any number of directories: try every parent prefix long enough.
            const fixed = rule.text.split('/').filter((s) => s !== '**').length;
            for (let n = fixed; n <= parentDirs.length && !match; n++) match = rule.regexp.test(parentDirs.slice(0, n).join('/'));
          } else if (rule.segments <= parentDirs.length) {
            match = rule.regexp.test(parentDirs.slice(0, rule.segments).join('/'));
          }
        }
        if (match) excluded = !rule.negative;
      }
      return excluded;
    },
    mayReinclude(dir: string): boolean {
      const prefix = `${clean(dir)}/`;
      return exceptions.some((e) => `${e}/`.startsWith(prefix));
    },
  };
}
