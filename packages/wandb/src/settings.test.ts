import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseNetrc, netrcEntryFor } from './netrc.js';
import { chooseSource, shouldUseWandb } from './select.js';
import { describeKeySource, resolveWandbSettings } from './settings.js';

const home = (netrc?: string) => {
  const dir = mkdtempSync(join(tmpdir(), 'wandb-home-'));
  if (netrc !== undefined) writeFileSync(join(dir, '.netrc'), netrc, { mode: 0o600 });
  return dir;
};

describe('parseNetrc', () => {
  it('reads machines, default, quoted values, comments, and skips macros', () => {
    const entries = parseNetrc(
      [
        '# written by wandb login',
        'machine api.wandb.ai',
        '  login user',
        '  password abcdef0123456789',
        'macdef init',
        'machine inside.macro password nope',
        '',
        'machine wandb.example.com:8443 login api password "quoted key"',
        'default login anon password fallback-key',
      ].join('\n'),
    );
    expect(entries).toEqual([
      { machine: 'api.wandb.ai', login: 'user', password: 'abcdef0123456789' },
      { machine: 'wandb.example.com:8443', login: 'api', password: 'quoted key' },
      { machine: null, login: 'anon', password: 'fallback-key' },
    ]);
    expect(netrcEntryFor(entries, 'wandb.example.com', '8443')?.password).toBe('quoted key');
    expect(netrcEntryFor(entries, 'other.host')?.password).toBe('fallback-key');
  });
});

describe('resolveWandbSettings', () => {
  it('defaults to https://api.wandb.ai and no key', () => {
    expect(resolveWandbSettings({ env: {}, homedir: home() })).toEqual({
      baseUrl: 'https://api.wandb.ai',
      baseUrlSource: 'default',
      keySource: undefined,
    });
  });

  it('takes the key from config, then WANDB_API_KEY, then ~/.netrc for the API host', () => {
    const h = home('machine api.wandb.ai login user password netrc-key-0001\nmachine other password other-key-0002\n');
    const env = { WANDB_API_KEY: 'env-key-0003' };
    expect(resolveWandbSettings({ config: { api_key: 'config-key-0004' }, env, homedir: h })).toMatchObject({ apiKey: 'config-key-0004', keySource: 'config' });
    expect(resolveWandbSettings({ env, homedir: h })).toMatchObject({ apiKey: 'env-key-0003', keySource: 'env' });
    expect(resolveWandbSettings({ env: {}, homedir: h })).toMatchObject({ apiKey: 'netrc-key-0001', keySource: 'netrc', netrcPath: join(h, '.netrc') });
    // The netrc entry must be the one for the base URL's host.
    expect(resolveWandbSettings({ env: { WANDB_BASE_URL: 'https://other:9000' }, homedir: h })).toMatchObject({ apiKey: 'other-key-0002', keySource: 'netrc' });
    expect(resolveWandbSettings({ env: { WANDB_BASE_URL: 'https://third.example' }, homedir: h }).apiKey).toBeUndefined();
  });

  it('honours $NETRC and treats blank values as unset', () => {
    const h = home();
    const file = join(h, 'custom-netrc');
    writeFileSync(file, 'machine api.wandb.ai password from-netrc-env\n');
    expect(resolveWandbSettings({ config: { api_key: '  ' }, env: { WANDB_API_KEY: '', NETRC: file }, homedir: h })).toMatchObject({
      apiKey: 'from-netrc-env',
      keySource: 'netrc',
    });
  });

  it('takes the base URL from config, then WANDB_BASE_URL, normalising it', () => {
    const env = { WANDB_BASE_URL: 'https://env.example.com/' };
    expect(resolveWandbSettings({ config: { base_url: 'http://localhost:8080/graphql' }, env })).toMatchObject({
      baseUrl: 'http://localhost:8080',
      baseUrlSource: 'config',
    });
    expect(resolveWandbSettings({ env })).toMatchObject({ baseUrl: 'https://env.example.com', baseUrlSource: 'env' });
  });

  it('rejects a base URL that is not http(s), naming where it came from', () => {
    expect(() => resolveWandbSettings({ env: { WANDB_BASE_URL: 'ftp://x' } })).toThrow(/WANDB_BASE_URL must be an http\(s\) URL/);
    expect(() => resolveWandbSettings({ config: { base_url: 'not a url' } })).toThrow(/base_url is not a valid URL/);
  });

  it('takes the entity from config, then WANDB_ENTITY', () => {
    expect(resolveWandbSettings({ config: { entity: 'team' }, env: { WANDB_ENTITY: 'me' } }).entity).toBe('team');
    expect(resolveWandbSettings({ env: { WANDB_ENTITY: 'me' } }).entity).toBe('me');
  });

  it('names the key origin without the key', () => {
    expect(describeKeySource({ keySource: 'env' })).toBe('WANDB_API_KEY');
    expect(describeKeySource({ keySource: 'netrc', netrcPath: '/h/.netrc' })).toBe('/h/.netrc');
    expect(describeKeySource({ keySource: 'config' })).toBe('api_key in the agent config');
  });
});

describe('shouldUseWandb (source selection rule)', () => {
  const s = (entity?: string, apiKey?: string, baseUrlSource: 'config' | 'env' | 'default' = 'default') => ({
    ...(entity ? { entity } : {}),
    ...(apiKey ? { apiKey } : {}),
    baseUrlSource,
  });
  it('picks W&B with an entity and a key', () => expect(shouldUseWandb({ settings: s('team', 'k') })).toBe(true));
  it('picks W&B with an entity and an explicit base URL', () => expect(shouldUseWandb({ settings: s('team', undefined, 'env') })).toBe(true));
  it('picks the embedded queue without an entity, even with a key', () => expect(shouldUseWandb({ settings: s(undefined, 'k') })).toBe(false));
  it('picks the embedded queue with an entity but no key or base URL', () => {
    expect(chooseSource({ settings: s('team') })).toEqual({
      choice: 'embedded',
      reason: 'entity team is configured but no W&B API key or base URL is available',
    });
  });
  it('obeys an explicit choice either way', () => {
    expect(shouldUseWandb({ source: 'wandb', settings: s() })).toBe(true);
    expect(shouldUseWandb({ source: 'embedded', settings: s('team', 'k') })).toBe(false);
  });
});
