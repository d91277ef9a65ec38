import { describe, expect, it } from 'vitest';
import { retainDoneFromEnv } from './select-source.js';

describe('LAUNCH_RETAIN_DONE', () => {
  it('reads ITEMS[,AGE], all and off', () => {
    expect(retainDoneFromEnv({}, 'run')).toBeUndefined();
    expect(retainDoneFromEnv({ LAUNCH_RETAIN_DONE: '5000' }, 'run')).toEqual({ maxItems: 5000 });
    expect(retainDoneFromEnv({ LAUNCH_RETAIN_DONE: '5000,2d' }, 'run')).toEqual({ maxItems: 5000, maxAgeMs: 2 * 86_400_000 });
    expect(retainDoneFromEnv({ LAUNCH_RETAIN_DONE: 'all, 90s' }, 'run')).toEqual({ maxItems: Infinity, maxAgeMs: 90_000 });
    expect(retainDoneFromEnv({ LAUNCH_RETAIN_DONE: '10,all' }, 'run')).toEqual({ maxItems: 10, maxAgeMs: Infinity });
    expect(retainDoneFromEnv({ LAUNCH_RETAIN_DONE: 'off' }, 'run')).toBe(false);
  });

  it('refuses a bad value, naming the variable and the part', () => {
    expect(() => retainDoneFromEnv({ LAUNCH_RETAIN_DONE: '0' }, 'run')).toThrow(/LAUNCH_RETAIN_DONE.*ITEMS "0"/);
    expect(() => retainDoneFromEnv({ LAUNCH_RETAIN_DONE: '10,7' }, 'run')).toThrow(/AGE "7"/);
    expect(() => retainDoneFromEnv({ LAUNCH_RETAIN_DONE: '10,7d,1' }, 'run')).toThrow(/more than two parts/);
  });
});
