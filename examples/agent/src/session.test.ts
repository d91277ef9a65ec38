import { describe, expect, it } from 'vitest';
import { exitCodeForStop } from './session.js';
import { EXIT_FAILURE, EXIT_OK } from './usage.js';

describe('exitCodeForStop', () => {
  it('exits 1 only when the agent stopped as fatal', () => {
    expect(EXIT_OK).not.toBe(EXIT_FAILURE);
    expect(exitCodeForStop({ cause: 'fatal' })).toBe(EXIT_FAILURE);
    expect(exitCodeForStop({ cause: 'requested' })).toBe(EXIT_OK);
    expect(exitCodeForStop({ cause: 'source' })).toBe(EXIT_OK);
  });
});
