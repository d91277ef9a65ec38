/**
 * Redaction cost per log line: 1,000 log lines (about 110 characters each, one in ten carrying a live
 * job's secret) through the agent's Redactor,
 * - after 10 and after 10,000 jobs have run and ended, each with its own secret (jobs ended), one job live;
 * - with 10 and with 1,000 jobs live at once, each with its own secret.
 * Each case is measured for the per-job Redactor (`scope()` per job, one Aho–Corasick automaton over the
 * agent-wide and live secrets) and, in the same run, for the Redactor it replaced (one list of every
 * secret ever seen, each line searched for each secret), re-implemented here as `LegacyRedactor`.
 * The matcher is rebuilt lazily after changes, paid by the next line; the table also gives the cost of
 * one more job (scope, secret, a line, release, a line; mean over 200 jobs) on top of each case's live set.
 * Times are medians of 7 passes after 2 warm-up passes.
 *
 *   npx tsx bench/redaction.ts
 */
import { Redactor, isSecretEnvName } from '@launch/core';
import { runIfMain, writeResult } from './lib/results.js';
import { round } from './lib/stats.js';
import { formatTable } from './lib/table.js';

const LINES = 1000;
const PASSES = 7;
const WARMUP = 2;

/** The Redactor before per-job scopes: every secret ever added, searched for one by one. */
class LegacyRedactor {
  private readonly secrets = new Set<string>();
  add(secret: string): void {
    if (secret.length >= 6) this.secrets.add(secret);
  }
  addSpecSecrets(spec: { _wandb_api_key?: string; env?: Record<string, string> }): void {
    if (spec._wandb_api_key) this.add(spec._wandb_api_key);
    for (const [k, v] of Object.entries(spec.env ?? {})) if (isSecretEnvName(k)) this.add(v);
  }
  redact(text: string): string {
    let out = text;
    for (const s of this.secrets) if (out.includes(s)) out = out.split(s).join('[REDACTED]');
    out = out.replace(/\b([A-Z0-9_]*(?:API_KEY|PASSWORD|SECRET|TOKEN))=([^\s"']+)/g, (_m, name: string) => `${name}=[REDACTED]`);
    out = out.replace(
      /("(?:_wandb_api_key|api_?key|apiKey|password|secret|token)"\s*:\s*")([^"]*)(")/gi,
      (_m, pre: string, _v: string, post: string) => `${pre}[REDACTED]${post}`,
    );
    return out;
  }
}

/** A job's secret: 40 characters, like a W&B API key. */
const secretOf = (n: number) => `key${n.toString(36).padStart(8, '0')}${'abcdef0123456789'.repeat(2)}`.slice(0, 40);

function logLines(liveSecrets: string[]): string[] {
  return Array.from({ length: LINES }, (_, i) => {
    const base = `2026-12-02T01:00:00.${String(i % 1000).padStart(3, '0')}Z step=${i} loss=0.${(i * 7919) % 10_000} lr=0.0003 epoch=${i % 17} throughput=1234.5/s`;
    return i % 10 === 0 && liveSecrets.length > 0 ? `${base} token ${liveSecrets[i % liveSecrets.length]}` : base;
  });
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Median ms to redact every line once. */
function timeLines(redact: (line: string) => string, lines: string[]): number {
  const times: number[] = [];
  let sink = 0;
  for (let p = 0; p < WARMUP + PASSES; p++) {
    const t0 = performance.now();
    for (const line of lines) sink += redact(line).length;
    const ms = performance.now() - t0;
    if (p >= WARMUP) times.push(ms);
  }
  if (sink === 0) throw new Error('nothing redacted');
  return median(times);
}

interface Case {
  name: string;
  ended: number;
  live: number;
}

const CASES: Case[] = [
  { name: '10 secrets ever seen (jobs ended), 1 live', ended: 10, live: 1 },
  { name: '10,000 secrets ever seen (jobs ended), 1 live', ended: 10_000, live: 1 },
  { name: '10 jobs live at once', ended: 0, live: 10 },
  { name: '1,000 jobs live at once', ended: 0, live: 1000 },
];

function measure(c: Case) {
  const agentWide = ['agent-wide-api-key-0123456789abcdef0123'];
  // New: scopes per job; ended jobs released.
  const redactor = new Redactor();
  for (const s of agentWide) redactor.add(s);
  const legacy = new LegacyRedactor();
  for (const s of agentWide) legacy.add(s);
  let n = 0;
  for (let i = 0; i < c.ended; i++) {
    const secret = secretOf(n++);
    const job = redactor.scope(`ended-${i}`);
    job.addSpecSecrets({ env: { HF_TOKEN: secret } });
    redactor.redact(`job ${i} started`); // the job logged while it ran: the matcher held its secret
    job.release();
    legacy.addSpecSecrets({ env: { HF_TOKEN: secret } });
  }
  const live: string[] = [];
  const scopes = [];
  for (let i = 0; i < c.live; i++) {
    const secret = secretOf(n++);
    live.push(secret);
    const job = redactor.scope(`live-${i}`);
    job.addSpecSecrets({ env: { HF_TOKEN: secret } });
    scopes.push(job);
    legacy.addSpecSecrets({ env: { HF_TOKEN: secret } });
  }
  const lines = logLines(live);
  const ours = timeLines((l) => redactor.redact(l), lines);
  const theirs = timeLines((l) => legacy.redact(l), lines);
  // Correctness: every live secret hidden by both.
  for (const l of lines) {
    const a = redactor.redact(l);
    if (live.some((s) => a.includes(s)) || agentWide.some((s) => a.includes(s))) throw new Error('a live secret was not redacted');
  }
  // A job starting and ending changes the matcher; the next line pays for the (partial) rebuild.
  // Measured over 200 jobs so the occasional full rebuild is averaged in.
  const churnJobs = 200;
  const t0 = performance.now();
  for (let p = 0; p < churnJobs; p++) {
    const job = redactor.scope('churn');
    job.add(secretOf(n++));
    redactor.redact(lines[0]!);
    job.release();
    redactor.redact(lines[1]!);
  }
  const churnMs = (performance.now() - t0) / churnJobs;
  for (const s of scopes) s.release();
  return {
    case: c.name,
    secretsEverSeen: agentWide.length + c.ended + c.live,
    secretsInMatcher: agentWide.length + c.live,
    redactorSizeAfter: redactor.size,
    msPer1000Lines: round(ours, 2),
    legacyMsPer1000Lines: round(theirs, 2),
    speedup: round(theirs / ours, 1),
    jobStartEndMs: round(churnMs, 3),
  };
}

export async function run(): Promise<Record<string, unknown>> {
  measure(CASES[0]!); // JIT warm-up for both implementations, not reported
  const rows = CASES.map(measure);
  const table = formatTable([
    ['case', 'secrets ever seen', 'in matcher', 'ms / 1,000 lines', 'before (ms)', 'speed-up', 'job start + end (ms)'],
    ...rows.map((r) => [r.case, r.secretsEverSeen, r.secretsInMatcher, r.msPer1000Lines, r.legacyMsPer1000Lines, `${r.speedup}x`, r.jobStartEndMs]),
  ]);
  process.stdout.write(`${table}\n`);
  const ratio = round(rows[1]!.msPer1000Lines / rows[0]!.msPer1000Lines, 2);
  const summary = [
    {
      benchmark: 'redaction',
      figure: '1,000 lines, 10 / 10,000 secrets ever seen',
      value: `${rows[0]!.msPer1000Lines} / ${rows[1]!.msPer1000Lines} ms (before: ${rows[0]!.legacyMsPer1000Lines} / ${rows[1]!.legacyMsPer1000Lines} ms)`,
      target: 'independent of jobs ended',
      met: ratio < 2,
    },
    {
      benchmark: 'redaction',
      figure: '1,000 lines, 10 / 1,000 jobs live',
      value: `${rows[2]!.msPer1000Lines} / ${rows[3]!.msPer1000Lines} ms (before: ${rows[2]!.legacyMsPer1000Lines} / ${rows[3]!.legacyMsPer1000Lines} ms)`,
      target: '',
      met: undefined,
    },
  ];
  const result = { lines: LINES, passes: PASSES, rows, endedRatio: ratio, summary };
  const path = writeResult('redaction', result);
  process.stdout.write(`${JSON.stringify(result)}\nwritten to ${path}\n`);
  return result;
}

runIfMain(import.meta.url, run);
