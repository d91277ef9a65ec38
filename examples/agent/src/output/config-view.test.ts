import { describe, expect, it } from 'vitest';
import { palette } from './color.js';
import { flattenConfig, originOf, renderConfig } from './config-view.js';

describe('config view', () => {
  it('flattens nested keys and keeps lists whole', () => {
    expect(flattenConfig({ queues: ['a', 'b'], builder: { type: 'noop' }, registry: {} })).toEqual([
      ['queues', ['a', 'b']],
      ['builder.type', 'noop'],
      ['registry', {}],
    ]);
  });

  it('finds the origin of a key or of its parent', () => {
    expect(originOf({ 'builder.type': 'file', entity: 'env' }, 'builder.type')).toBe('file');
    expect(originOf({ builder: 'flag' }, 'builder.destination')).toBe('flag');
    expect(originOf({}, 'max_jobs')).toBe('default');
  });

  it('renders KEY VALUE FROM rows', () => {
    const text = renderConfig({ max_jobs: 2, queues: ['q'] }, { max_jobs: 'flag', queues: 'file' }, palette(false));
    expect(text.split('\n')).toEqual(['KEY       VALUE  FROM', 'max_jobs  2      flag', 'queues    ["q"]  file']);
  });
});
