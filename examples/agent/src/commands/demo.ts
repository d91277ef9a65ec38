import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { parseAgentConfig, type ItemRecord, type LaunchSpec } from '@launch/core';
import type { Io } from '../io.js';
import { colorEnabled, palette } from '../output/color.js';
import { ITEM_HEADERS, itemRow } from '../output/item-format.js';
import { renderTable } from '../output/table.js';
import { createSession } from '../session.js';
import { choiceFlag, parseCommandArgs } from '../usage.js';

export const DEMO_HELP = `Usage: launch-agent demo [options]

Enqueues three demo jobs on a temporary embedded queue (one prints progress for a couple of
seconds, one writes a file, one fails on purpose), runs the agent until they end, and prints a
summary. Exit 0 when every job ended as expected (the failing job failing is expected).

Options:
      --keep              keep the temporary state directory (queue files, logs) and print its path
      --log-format FMT    human (default) or json
  -h, --help              show this help`;

const FLAGS = {
  keep: { type: 'boolean' },
  'log-format': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface DemoJob {
  name: string;
  spec: LaunchSpec;
  priority: 'high' | 'medium' | 'low';
  /** What a correct run looks like; returns a problem, or undefined when as expected. */
  check(item: ItemRecord): string | undefined;
}

function node(script: string): string[] {
  return [process.execPath, '-e', script];
}

/** The demo's jobs; plain Node scripts so they run wherever the agent runs. */
export function demoJobs(dir: string): DemoJob[] {
  const outFile = join(dir, 'demo-output.txt');
  return [
    {
      name: 'progress',
      priority: 'high',
      spec: {
        name: 'progress',
        resource: 'local-process',
        overrides: {
          entry_point: node(
            `let i=0;const t=setInterval(()=>{i++;console.log('training step '+i+'/5, loss '+(1/i).toFixed(3));if(i===5){clearInterval(t);console.log('done')}},400)`,
          ),
        },
      },
      check: (item) => (item.state === 'finished' && item.exitCode === 0 ? undefined : 'expected to finish with exit code 0'),
    },
    {
      name: 'write-file',
      priority: 'medium',
      spec: {
        name: 'write-file',
        resource: 'local-process',
        env: { DEMO_OUTPUT: outFile },
        overrides: {
          entry_point: node(
            `require('fs').writeFileSync(process.env.DEMO_OUTPUT,'written by run '+process.env.WANDB_RUN_ID+'\\n');console.log('wrote '+process.env.DEMO_OUTPUT)`,
          ),
        },
      },
      check: (item) => {
        if (item.state !== 'finished' || item.exitCode !== 0) return 'expected to finish with exit code 0';
        if (!existsSync(outFile)) return `expected ${outFile} to exist`;
        const text = readFileSync(outFile, 'utf8');
        return item.runId && text.includes(item.runId) ? undefined : `expected ${outFile} to name run ${item.runId}`;
      },
    },
    {
      name: 'fail-on-purpose',
      priority: 'low',
      spec: {
        name: 'fail-on-purpose',
        resource: 'local-process',
        overrides: { entry_point: node(`console.error('this job fails on purpose with exit code 3');process.exit(3)`) },
      },
      check: (item) =>
        item.state === 'failed' && item.failure?.stage === 'run' && item.exitCode === 3 ? undefined : 'expected to fail at stage run with exit code 3',
    },
  ];
}

export async function demoCommand(argv: string[], io: Io): Promise<number> {
  const { values: v } = parseCommandArgs('demo', argv, FLAGS);
  if (v.help) {
    io.stdout.write(DEMO_HELP + '\n');
    return 0;
  }
  const format = choiceFlag('demo', 'log-format', v['log-format'], ['human', 'json'] as const) ?? 'human';
  const dir = await mkdtemp(join(tmpdir(), 'launch-demo-'));
  const c = palette(format === 'human' && colorEnabled(io.stderr, io.env));
  try {
    const config = parseAgentConfig(
      { source: 'embedded', state_dir: join(dir, 'state'), queues: ['demo'], max_jobs: 3, kill_grace_period: 2, poll_interval: 0.5 },
      'demo config',
    );
    const session = await createSession({
      io,
      config,
      origins: { source: 'flag' },
      command: 'demo',
      format,
      showLogs: true,
      exitWhenIdle: true,
    });
    const queue = session.selected.embedded!;
    const jobs = demoJobs(dir);
    const ids = new Map<string, DemoJob>();
    for (const job of jobs) {
      const item = await queue.enqueue({ queue: 'demo', spec: job.spec, priority: job.priority });
      ids.set(item.id, job);
    }
    if (format === 'human') {
      session.out.write(`${c.bold('launch demo')}: ${jobs.length} jobs on a temporary embedded queue (${dir}); the agent runs them now\n`);
    }
    const code = await session.run();
    const items = (await Promise.all([...ids.keys()].map((id) => queue.get(id)))).filter((i): i is ItemRecord => i !== undefined);
    const problems = items.flatMap((item) => {
      const problem = ids.get(item.id)!.check(item);
      return problem ? [`${ids.get(item.id)!.name} (${item.id}): ${problem}`] : [];
    });
    if (items.length !== jobs.length) problems.push(`expected ${jobs.length} items, found ${items.length}`);
    if (code !== 0) problems.push(`the agent exited with code ${code}`);
    const now = Date.now();
    const rows = items.map((item) => [ids.get(item.id)!.name, ...itemRow(item, c, now), ids.get(item.id)!.check(item) ? c.red('no') : c.green('yes')]);
    if (format === 'json') {
      io.stderr.write(
        session.redactor.redact(JSON.stringify({ event: 'demo:summary', ok: problems.length === 0, items: items.map(({ spec: _s, ...r }) => r), problems })) +
          '\n',
      );
    } else {
      io.stderr.write('\n' + session.redactor.redact(renderTable(['JOB', ...ITEM_HEADERS, 'AS EXPECTED'], rows)) + '\n\n');
      io.stderr.write(
        problems.length === 0
          ? `${c.green('demo OK')}: every job ended as expected (the failing job failing is expected).\n` +
              `Next, your own job:  ${self(io)} enqueue -- echo hello  then  ${self(io)} --exit-when-idle -v\n`
          : `${c.red('demo FAILED')}:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`,
      );
    }
    if (v.keep) io.stderr.write(`state kept in ${dir}\n`);
    return problems.length === 0 ? 0 : 1;
  } finally {
    if (!v.keep) await rm(dir, { recursive: true, force: true });
  }
}

/** How the user can call this binary again: `launch-agent` when installed, `node <path>` from a checkout. */
function self(io: Io): string {
  const script = process.argv[1];
  if (!script || basename(script) !== 'cli.js') return 'launch-agent';
  const rel = relative(io.cwd, script);
  return `node ${rel.startsWith('..') ? script : rel}`;
}
