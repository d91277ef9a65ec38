import { Redactor } from '@launch/core';
import { describe, expect, it } from 'vitest';
import { createCliLogger, levelForVerbosity } from './logger.js';
import { streamSink } from './sink.js';

function capture() {
  let text = '';
  return { stream: { write: (s: string) => (text += s) }, text: () => text };
}

describe('cli logger', () => {
  it('scrubs secret fields, registered secrets and KEY=value assignments', () => {
    const r = new Redactor();
    r.add('registered-secret-123');
    const out = capture();
    const log = createCliLogger({ sink: streamSink(out.stream, r), level: 'debug', format: 'json', redactor: r });
    log.info({ spec: { _wandb_api_key: 'abcdef123456', name: 'job' }, note: 'key registered-secret-123' }, 'WANDB_API_KEY=zzzzzz999 claimed');
    const text = out.text();
    expect(text).not.toContain('abcdef123456');
    expect(text).not.toContain('registered-secret-123');
    expect(text).not.toContain('zzzzzz999');
    expect(JSON.parse(text)).toMatchObject({ level: 'info', spec: { name: 'job', _wandb_api_key: '[REDACTED]' } });
  });

  it('filters by level and keeps child bindings', () => {
    const r = new Redactor();
    const out = capture();
    const log = createCliLogger({ sink: streamSink(out.stream, r), level: 'warn', format: 'human', redactor: r, now: () => new Date(0) });
    log.info('hidden');
    log.child!({ itemId: 'i1' }).warn({ err: new Error('boom') }, 'shown');
    expect(out.text()).toBe('1970-01-01T00:00:00.000Z WARN  shown itemId=i1 err={"name":"Error","message":"boom"}\n');
  });

  it('maps -v counts to levels', () => {
    expect([0, 1, 2, 3].map(levelForVerbosity)).toEqual(['error', 'info', 'debug', 'debug']);
  });
});
