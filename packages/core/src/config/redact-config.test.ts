import { describe, expect, it } from 'vitest';
import { parseAgentConfig } from './parse.js';
import { redactAgentConfig } from './redact-config.js';

describe('redactAgentConfig', () => {
  it('hides the API key and keeps everything else', () => {
    const config = parseAgentConfig({ entity: 'team', api_key: 'local-0123456789abcdef', queues: ['q'] }, 'c');
    const shown = redactAgentConfig(config);
    expect(shown).toEqual({ ...config, api_key: '[REDACTED]' });
    expect(JSON.stringify(shown)).not.toContain('0123456789abcdef');
    expect(config.api_key).toBe('local-0123456789abcdef');
  });
  it('leaves a config without a key unchanged', () => {
    const config = parseAgentConfig({}, 'c');
    expect(redactAgentConfig(config)).toEqual(config);
    expect(redactAgentConfig(config)).not.toHaveProperty('api_key');
  });
});
