import { describe, expect, it } from 'vitest';
import { REDACTED, Redactor, isSecretEnvName } from './redact.js';

describe('Redactor', () => {
  it("learns a raw spec's API key and secret-looking env values, and nothing else", () => {
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

  it('masks the signature of a signed URL (Azure SAS, S3/GCS presigned, a token in a query) and keeps the rest readable', () => {
    const r = new Redactor();
    expect(r.redact('store https://acct.blob.core.windows.net/ctx?sv=2022-11-02&sp=rw&sig=AbC%2Bd/EF= is refused')).toBe(
      `store https://acct.blob.core.windows.net/ctx?sv=2022-11-02&sp=rw&sig=${REDACTED} is refused`,
    );
    expect(r.redact('GET /b/o?X-Amz-Credential=AK%2F1&X-Amz-Signature=deadbeef&X-Amz-Security-Token=tok#x')).toBe(
      `GET /b/o?X-Amz-Credential=AK%2F1&X-Amz-Signature=${REDACTED}&X-Amz-Security-Token=${REDACTED}#x`,
    );
    expect(r.redactValue({ uri: 'gs://b/o?X-Goog-Signature=0a1b&alt=media', other: '?access_token=ya29.x' })).toEqual({
      uri: `gs://b/o?X-Goog-Signature=${REDACTED}&alt=media`,
      other: `?access_token=${REDACTED}`,
    });
    // Not a query parameter: left alone.
    expect(r.redact('the signature= field and tokens=3')).toBe('the signature= field and tokens=3');
  });

  it('treats names with KEY, PASSWORD, SECRET, TOKEN or CREDENTIALS anywhere as secret', () => {
    for (const name of ['WANDB_API_KEY', 'KEY_ID', 'MY_KEYFILE', 'DB_PASSWORD', 'CLIENT_SECRET_X', 'GH_TOKEN', 'GOOGLE_CREDENTIALS']) {
      expect(isSecretEnvName(name), name).toBe(true);
    }
    for (const name of ['PATH', 'HOME', 'SEED', 'WANDB_PROJECT']) expect(isSecretEnvName(name), name).toBe(false);
  });
});

describe('Redactor scopes (per-job secrets)', () => {
  it("redacts a live scope's secrets everywhere, and forgets them when the scope is released", () => {
    const r = new Redactor();
    r.add('agent-wide-key-123');
    const job = r.scope('item-1');
    job.addSpecSecrets({ _wandb_api_key: 'job-key-abcdef', env: { HF_TOKEN: 'hf_job_token', SEED: '1234567' } });
    expect(r.size).toBe(3);
    // Agent-wide output (the redactor itself) hides the running job's secrets too.
    expect(r.redact('a agent-wide-key-123 b job-key-abcdef c hf_job_token 1234567')).toBe(`a ${REDACTED} b ${REDACTED} c ${REDACTED} 1234567`);
    expect(job.redact('job-key-abcdef')).toBe(REDACTED);
    expect(job.redactValue({ msg: 'x hf_job_token' })).toEqual({ msg: `x ${REDACTED}` });
    job.release();
    expect(r.has('job-key-abcdef')).toBe(false);
    expect(r.has('hf_job_token')).toBe(false);
    expect(r.size).toBe(1);
    expect(r.redact('job-key-abcdef agent-wide-key-123')).toBe(`job-key-abcdef ${REDACTED}`);
    // A released scope registers nothing more; release is idempotent.
    job.add('late-secret-xyz');
    job.release();
    expect(r.has('late-secret-xyz')).toBe(false);
  });

  it('keeps a secret two holders share until the last one releases it, and never drops an agent-wide secret', () => {
    const r = new Redactor();
    r.add('shared-secret-1');
    const a = r.scope('a');
    const b = r.scope('b');
    a.add('shared-secret-1');
    a.add('both-jobs-key');
    b.add('both-jobs-key');
    a.release();
    expect(r.redact('both-jobs-key shared-secret-1')).toBe(`${REDACTED} ${REDACTED}`);
    b.release();
    expect(r.redact('both-jobs-key shared-secret-1')).toBe(`both-jobs-key ${REDACTED}`);
  });

  it('the secrets of 10,000 finished jobs do not stay in the matcher', () => {
    const r = new Redactor();
    r.add('agent-wide-key-123');
    const live = r.scope('live');
    live.add('live-job-secret');
    for (let i = 0; i < 10_000; i++) {
      const job = r.scope(`item-${i}`);
      job.addSpecSecrets({ _wandb_api_key: `finished-job-key-${i}`, env: { DB_PASSWORD: `pw-of-job-${i}` } });
      // Each job logs while it runs, so the matcher is rebuilt with its secrets in it.
      expect(r.redact(`job ${i}: finished-job-key-${i}`)).toBe(`job ${i}: ${REDACTED}`);
      job.release();
    }
    expect(r.size).toBe(2);
    // The matcher may keep a bounded margin of dropped secrets before it is rebuilt, never the history.
    expect(r.matcherSize).toBeLessThan(2 * 2 + 64 + 32 + 4);
    expect(r.has('finished-job-key-9999')).toBe(false);
    expect(r.redact('finished-job-key-42 pw-of-job-42 live-job-secret agent-wide-key-123')).toBe(`finished-job-key-42 pw-of-job-42 ${REDACTED} ${REDACTED}`);
  });

  it('redacts a secret again when a later job brings it back, and a short live secret inside a dropped longer one', () => {
    const r = new Redactor();
    // Enough secrets that later changes are matched through both automata (the snapshot and the recent).
    const base = Array.from({ length: 40 }, (_, i) => r.scope(`s${i}`));
    base.forEach((s, i) => s.add(`base-secret-${i}`));
    r.redact('build');
    const a = r.scope('a');
    a.add('outer-SHORTX-outer');
    a.add('SHORTX');
    expect(r.redact('x outer-SHORTX-outer y')).toBe(`x ${REDACTED} y`);
    a.release();
    const b = r.scope('b');
    b.add('SHORTX');
    expect(r.redact('x outer-SHORTX-outer y')).toBe(`x outer-${REDACTED}-outer y`);
    b.release();
    const c = r.scope('c');
    c.add('outer-SHORTX-outer');
    expect(r.redact('x outer-SHORTX-outer y base-secret-7')).toBe(`x ${REDACTED} y ${REDACTED}`);
    base.forEach((s) => s.release());
    expect(r.redact('base-secret-7 outer-SHORTX-outer')).toBe(`base-secret-7 ${REDACTED}`);
  });

  it('leaves no part of overlapping or nested secrets in clear', () => {
    const r = new Redactor();
    r.add('abcdefgh');
    r.add('efghijkl');
    r.add('xxINNERxx');
    r.add('INNERx');
    expect(r.redact('0abcdefghijkl1')).toBe(`0${REDACTED}1`);
    expect(r.redact('<xxINNERxx>')).toBe(`<${REDACTED}>`);
    expect(r.redact('INNERx and abcdefghabcdefgh')).toBe(`${REDACTED} and ${REDACTED}${REDACTED}`);
    expect(r.redact('no secret here, abcdefg almost')).toBe('no secret here, abcdefg almost');
  });

  it('matches like the plain search it replaces, on random text and secrets', () => {
    // Reference: every character covered by some occurrence of some secret is hidden.
    let seed = 7;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
    const alphabet = 'ab-c';
    const word = (len: number) => Array.from({ length: len }, () => alphabet[rand(alphabet.length)]).join('');
    for (let round = 0; round < 200; round++) {
      const secrets = Array.from({ length: 1 + rand(5) }, () => word(6 + rand(4)));
      const text = word(80);
      const r = new Redactor();
      for (const s of secrets) r.add(s);
      const covered = new Array<boolean>(text.length).fill(false);
      for (const s of secrets) for (let i = text.indexOf(s); i >= 0; i = text.indexOf(s, i + 1)) covered.fill(true, i, i + s.length);
      const redacted = r.redact(text);
      // Rebuild the expected text: each maximal run of overlapping occurrences becomes one REDACTED
      // (adjacent but not overlapping runs may become one or two; compare what stays in clear).
      const clear = text
        .split('')
        .filter((_, i) => !covered[i])
        .join('');
      expect(redacted.split(REDACTED).join(''), `${JSON.stringify(secrets)} in ${text}`).toBe(clear);
      for (const s of secrets) expect(redacted).not.toContain(s);
    }
  });
});
