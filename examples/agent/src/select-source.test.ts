import type { AgentConfig } from '@launch/core';
import { describe, expect, it } from 'vitest';
import { chooseSourceKind } from './select-source.js';

const cfg = (c: Partial<AgentConfig>) => ({ source: 'wandb', queues: [], ...c }) as AgentConfig;

describe('chooseSourceKind', () => {
  it('uses the embedded queue when nothing points at W&B, though the schema defaults source to wandb', () => {
    expect(chooseSourceKind(cfg({}), {}, { source: 'default' })).toBe('embedded');
    expect(chooseSourceKind(cfg({ entity: 'team' }), {}, { source: 'default' })).toBe('embedded');
    expect(chooseSourceKind(cfg({ api_key: 'k'.repeat(40) }), {}, { source: 'default' })).toBe('embedded');
  });

  it('uses W&B when an entity and a key or base URL are configured', () => {
    expect(chooseSourceKind(cfg({ entity: 'team', api_key: 'k'.repeat(40) }), {}, {})).toBe('wandb');
    expect(chooseSourceKind(cfg({ entity: 'team' }), { WANDB_BASE_URL: 'http://w' }, {})).toBe('wandb');
  });

  it('obeys a source someone wrote', () => {
    expect(chooseSourceKind(cfg({ source: 'wandb' }), {}, { source: 'flag' })).toBe('wandb');
    expect(chooseSourceKind(cfg({ source: 'embedded', entity: 'team', api_key: 'k'.repeat(40) }), {}, { source: 'file' })).toBe('embedded');
  });
});
