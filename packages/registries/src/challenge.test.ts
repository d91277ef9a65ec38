import { describe, expect, it } from 'vitest';
import { parseWwwAuthenticate } from './challenge.js';

describe('parseWwwAuthenticate', () => {
  it('parses a Distribution Bearer challenge', () => {
    expect(parseWwwAuthenticate('Bearer realm="http://127.0.0.1:5001/token",service="launch-test-registry",scope="repository:a/b:pull"')).toEqual([
      { scheme: 'bearer', params: { realm: 'http://127.0.0.1:5001/token', service: 'launch-test-registry', scope: 'repository:a/b:pull' } },
    ]);
  });

  it('parses Basic, lower-cases scheme and parameter names, keeps value case', () => {
    expect(parseWwwAuthenticate('BASIC Realm="Basic Realm"')).toEqual([{ scheme: 'basic', params: { realm: 'Basic Realm' } }]);
  });

  it('splits several challenges in one header, with spaces after commas', () => {
    const challenges = parseWwwAuthenticate('Basic realm="x", Bearer realm="https://auth.example/token", service="reg" ,scope="repository:a:pull,push"');
    expect(challenges.map((c) => c.scheme)).toEqual(['basic', 'bearer']);
    expect(challenges[1]!.params).toEqual({ realm: 'https://auth.example/token', service: 'reg', scope: 'repository:a:pull,push' });
  });

  it('unescapes quoted strings and accepts bare token values', () => {
    expect(parseWwwAuthenticate('Bearer realm="a\\"b\\\\c",service=registry.io')[0]!.params).toEqual({ realm: 'a"b\\c', service: 'registry.io' });
  });

  it('handles a scheme with no parameters and token68 values', () => {
    expect(parseWwwAuthenticate('Negotiate, Basic realm="r"')).toEqual([
      { scheme: 'negotiate', params: {} },
      { scheme: 'basic', params: { realm: 'r' } },
    ]);
    expect(parseWwwAuthenticate('Negotiate abc123==, Basic realm="r"')).toEqual([
      { scheme: 'negotiate', params: {}, token68: 'abc123==' },
      { scheme: 'basic', params: { realm: 'r' } },
    ]);
  });

  it('returns nothing for an empty header', () => {
    expect(parseWwwAuthenticate('')).toEqual([]);
    expect(parseWwwAuthenticate(' , ')).toEqual([]);
  });

  it('refuses malformed headers, saying where', () => {
    expect(() => parseWwwAuthenticate('Bearer realm="unterminated')).toThrow(/unterminated quoted string/);
    expect(() => parseWwwAuthenticate('Bearer realm="x" service="y"')).toThrow(/expected "," after parameter realm/);
    expect(() => parseWwwAuthenticate('"Bearer"')).toThrow(/expected an auth scheme, found "\\""/);
  });
});
