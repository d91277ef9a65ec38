import { describe, expect, it } from 'vitest';
import { REDACTED, Redactor, isSecretEnvName } from './redact.js';

describe('Redactor', () => {
  it('learns a raw spec\'s API key and secret-looking env values, and nothing else', () => {
    const r = new Redactor();
    r.addSpecSecrets({
      _wandb_api_key: 'spec-key-0123456789',
      env: { HF_TOKEN: 'hf_abcdefgh', DB_PASSWORD: 'hunter2-long', AWS_SECRET_ACCESS_KEY: 'aws-secret-xyz', SEED: '12345678' },
    });
    const text = r.redact('spec-key-0123456789 hf_abcdefgh hunter2-long aws-secret-xyz 12345678');
    expect(text).toBe(`${REDACTED} ${REDACTED} ${REDACTED} ${REDACTED} 12345678`);
  });

  it('ignores malformed specs without throwing', () => {
    const r = new Redactor();
    for (const spec of [null, 42, 'str', [], { env: 'x' }, { env: { K_TOKEN: 5 } }, { _wandb_api_key: 7 }]) {
      expect(() => r.addSpecSecrets(spec)).not.toThrow();
    }
    expect(r.redact('nothing to hide')).toBe('nothing to hide');
  });

  it('treats names with KEY, PASSWORD, SECRET, TOKEN or CREDENTIALS anywhere as secret', () => {
    for (const name of ['WANDB_API_KEY', 'KEY_ID', 'MY_KEYFILE', 'DB_PASSWORD', 'CLIENT_SECRET_X', 'GH_TOKEN', 'GOOGLE_CREDENTIALS']) {
      expect(isSecretEnvName(name), name).toBe(true);
    }
    for (const name of ['PATH', 'HOME', 'SEED', 'WANDB_PROJECT']) expect(isSecretEnvName(name), name).toBe(false);
  });
});
