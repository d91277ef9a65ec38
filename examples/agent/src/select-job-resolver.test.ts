import { describe, expect, it } from 'vitest';
import { isConfigProblem } from './load-config.js';
import { jobCacheMaxBytes } from './select-job-resolver.js';

describe('LAUNCH_JOB_CACHE_MAX', () => {
  it('takes bytes or a size with a unit, and unset means the resolver default', () => {
    expect(jobCacheMaxBytes({})).toBeUndefined();
    expect(jobCacheMaxBytes({ LAUNCH_JOB_CACHE_MAX: '' })).toBeUndefined();
    expect(jobCacheMaxBytes({ LAUNCH_JOB_CACHE_MAX: '1048576' })).toBe(1048576);
    expect(jobCacheMaxBytes({ LAUNCH_JOB_CACHE_MAX: '500MiB' })).toBe(500 * 1024 ** 2);
    expect(jobCacheMaxBytes({ LAUNCH_JOB_CACHE_MAX: '20 GB' })).toBe(20e9);
    expect(jobCacheMaxBytes({ LAUNCH_JOB_CACHE_MAX: '1.5gib' })).toBe(1.5 * 1024 ** 3);
  });

  it('refuses what is not a size as a config error (exit 2) naming the variable and the value', () => {
    for (const value of ['lots', '-1', '0', '10 parsecs', '1e9']) {
      let caught: unknown;
      try {
        jobCacheMaxBytes({ LAUNCH_JOB_CACHE_MAX: value });
      } catch (error) {
        caught = error;
      }
      expect(isConfigProblem(caught), value).toBe(true);
      expect((caught as Error).message).toBe(
        `LAUNCH_JOB_CACHE_MAX: expected a size such as 20GiB or 500MB (or a number of bytes), found ${JSON.stringify(value)}`,
      );
    }
  });
});
