import { describe, expect, it } from 'vitest';
import { parseRunFlags } from './commands/run.js';
import { intFlag, parseCommandArgs, UsageError } from './usage.js';

describe('run flags', () => {
  it('collects repeated queues, counts -v and maps W&B short flags', () => {
    const f = parseRunFlags(['-q', 'a', '--queue', 'b', '-vv', '-j', '-1', '-e', 'team', '-l', '-', '-c', 'cfg.yaml']);
    expect(f).toMatchObject({ queues: ['a', 'b'], verbosity: 2, maxJobs: -1, entity: 'team', logFile: '-', configPath: 'cfg.yaml' });
    expect(f.exitWhenIdle).toBe(false);
    expect(f.logFormat).toBe('human');
  });

  it('leaves verbosity unset without -v so the file value stands', () => {
    expect(parseRunFlags([]).verbosity).toBeUndefined();
  });

  it('accepts --once as an alias of --exit-when-idle', () => {
    expect(parseRunFlags(['--once']).exitWhenIdle).toBe(true);
    expect(parseRunFlags(['--exit-when-idle']).exitWhenIdle).toBe(true);
  });

  it('refuses unknown flags, bad numbers and bad choices with a usage error', () => {
    expect(() => parseRunFlags(['--nope'])).toThrow(UsageError);
    expect(() => parseRunFlags(['-j', '2x'])).toThrow(/--max-jobs expects a whole number/);
    expect(() => parseRunFlags(['--log-format', 'xml'])).toThrow(/human, json/);
    expect(() => parseRunFlags(['--source', 'sqs'])).toThrow(/wandb, embedded/);
  });
});

describe('parseCommandArgs', () => {
  it('keeps everything after -- verbatim, flags included', () => {
    const r = parseCommandArgs('enqueue', ['--wait', '--', 'python', '-v', '--queue', 'x'], { wait: { type: 'boolean' } } as const, true);
    expect(r.values.wait).toBe(true);
    expect(r.rest).toEqual(['python', '-v', '--queue', 'x']);
  });

  it('names the command in usage errors', () => {
    try {
      parseCommandArgs('status', ['--bogus'], {} as const);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(UsageError);
      expect((error as UsageError).command).toBe('status');
      expect((error as UsageError).message).toContain('--bogus');
    }
  });

  it('intFlag takes negatives and refuses fractions', () => {
    expect(intFlag('run', 'max-jobs', '-1')).toBe(-1);
    expect(() => intFlag('run', 'max-jobs', '1.5')).toThrow(UsageError);
  });
});
