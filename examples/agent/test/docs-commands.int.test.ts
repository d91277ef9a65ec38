/**
 * "Every command the README shows is runnable as written": every command of the ```sh / ```bash /
 * ```console blocks of README.md and docs/*.md is classified below, and the `run` ones are run as a
 * reader runs them: through `/bin/sh -c`, in a fresh working directory with a private HOME and
 * LAUNCH_STATE_DIR, with `launch-agent` on PATH as a script around the built binary. A command the
 * table does not know fails the test, so a new doc command cannot go unchecked.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractDocCommands, fencedBlocks, type DocCommand } from './docs-commands/extract.js';
import { docShell, runShell, serveBounded, type DocShell } from './docs-commands/shell.js';
import { assertBuilt, cli, readText, status as queueStatus, waitFor, type Result } from './helpers.js';

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');

/** `run`: executed by the doc's scenario below. `skip`: not run here, for the reason given (which must be true). */
type Decision = { run: true } | { skip: string };
const RUN: Decision = { run: true };
const skip = (reason: string): Decision => ({ skip: reason });

const SETUP_CI_RUNS = 'a top-level set-up command: CI runs it on every change (pnpm install, build, test)';
const PNPM_TEST_RUNS = 'runs a test suite that `pnpm test` (vitest run) already includes';

/** Every doc command, by doc and exact text (continuations joined, `$ ` prompt and `# comment` removed). */
const TABLE: Record<string, Record<string, Decision>> = {
  'README.md': {
    'npx -y pnpm@10 install': skip(SETUP_CI_RUNS),
    'npx -y pnpm@10 demo': skip('the demo: examples/agent/test/demo.int.test.ts runs `launch-agent demo`; `pnpm demo` adds only `pnpm build`, which CI runs'),
    'npx -y pnpm@10 install --frozen-lockfile': skip(SETUP_CI_RUNS),
    'npx -y pnpm@10 test': skip(SETUP_CI_RUNS),
    'launch-agent': RUN,
    'launch-agent -q gpu -q cpu -j 4': RUN,
    'launch-agent --exit-when-idle': RUN,
    'launch-agent -v --log-format json': RUN,
    'launch-agent enqueue -- python train.py --lr 0.1': RUN,
    'launch-agent enqueue -q gpu --priority high --env SEED=1 --cwd ./project -- python train.py': RUN,
    'launch-agent enqueue --spec job.yaml --wait': RUN,
    'launch-agent status': RUN,
    'launch-agent status --json': RUN,
    'launch-agent config check -c launch-config.yaml': RUN,
    'launch-agent config schema > launch-config.schema.json': RUN,
    'npx -y pnpm@10 bench': skip('builds every package and runs all the benchmarks in bench/ (minutes of load on purpose)'),
  },
  'docs/cli.md': {
    'launch-agent queue create gpu --file gpu.yaml': RUN,
    'launch-agent enqueue -q gpu --spec job.yaml --template-var cpu=4 --template-var mem=16': RUN,
    'launch-agent check -q gpu --spec job.yaml --template-var mem=16': RUN,
  },
  'docs/deployment.md': {
    'npx -y pnpm@10 install': skip(SETUP_CI_RUNS),
    'npx -y pnpm@10 build': skip(SETUP_CI_RUNS),
    'npx -y pnpm@10 --filter launch-agent deploy --prod --legacy /tmp/launch-agent-image': skip(
      'copies the agent and its production dependencies out of the pnpm store; charts/launch-agent/test/image.int.test.ts runs it to build the image',
    ),
    'docker build -f docker/agent/Dockerfile -t registry.example.com/ml/launch-agent:0.1.0 /tmp/launch-agent-image': skip(
      'needs the node:20-bookworm-slim base image from Docker Hub; charts/launch-agent/test/image.int.test.ts builds the Dockerfile on a local base',
    ),
    'docker push registry.example.com/ml/launch-agent:0.1.0': skip('pushes to a remote registry (registry.example.com) with its credentials'),
    'helm install launch charts/launch-agent --namespace wandb --create-namespace -f values.yaml': skip('needs helm and a Kubernetes cluster'),
    'helm repo add volcano-sh https://volcano-sh.github.io/helm-charts': skip('needs helm and the network (a remote chart repository)'),
    'helm install volcano volcano-sh/volcano --namespace volcano-system --create-namespace': skip(
      'needs helm, a remote chart repository and a Kubernetes cluster',
    ),
    'helm upgrade <release> charts/launch-agent --namespace <ns> -f values.yaml --set agent.image=registry.example.com/ml/launch-agent:0.1.0': skip(
      'a template with placeholders (<release>, <ns>); needs helm and a Kubernetes cluster',
    ),
    'npx vitest run charts/launch-agent': skip(PNPM_TEST_RUNS + ' (charts/*/test/**)'),
  },
  'docs/metrics.md': {
    'launch-agent --health-port 9464': RUN,
    'launch-agent --health-port 9464 --health-host 0.0.0.0': RUN,
    'launch-agent --health-port 9464 --process-metrics': RUN,
  },
  'docs/wandb.md': {
    'export WANDB_API_KEY=…': skip('needs a W&B account (an API key)'),
    'export WANDB_ENTITY=my-team': skip('needs a W&B account (an entity)'),
    'launch-agent run -c ~/.config/wandb/launch-config.yaml -q gpu-queue': skip(
      'serves a W&B queue: needs a W&B account (examples/agent/test/wandb.int.test.ts covers it against the test server)',
    ),
    'launch-agent enqueue -q gpu-queue --priority high -- python train.py --lr 0.01': skip(
      'pushes to a W&B queue: needs a W&B account (wandb.int.test.ts covers it against the test server)',
    ),
  },
};

const executed = new Set<string>();
const keyOf = (doc: string, command: string) => `${doc}: ${command}`;

/** Whether the table says to run this command (and records that the scenario reached it). */
function runs(doc: string, command: string): boolean {
  const decision = TABLE[doc]?.[command];
  if (!decision) throw new Error(`the ${doc} scenario names "${command}", which is not in the table for ${doc}`);
  if (!('run' in decision)) return false;
  executed.add(keyOf(doc, command));
  return true;
}

/** Every `run` command of `doc` was reached by its scenario (so the table and the scenarios agree). */
function expectAllRun(doc: string): void {
  const missing = Object.entries(TABLE[doc]!)
    .filter(([command, d]) => 'run' in d && !executed.has(keyOf(doc, command)))
    .map(([command]) => command);
  expect(missing, `commands marked run that the ${doc} scenario does not run`).toEqual([]);
}

function expectExit(result: Result, code: number, command: string): void {
  expect(result.code, `"${command}" exited ${result.code ?? result.signal}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`).toBe(code);
}

/** The one fenced block of `doc` in language `lang` whose body satisfies `pick`: a fixture the doc itself shows. */
async function docBlock(doc: string, lang: string, pick: (body: string) => boolean): Promise<string> {
  const blocks = fencedBlocks(await readFile(join(REPO, doc), 'utf8')).filter((b) => b.lang === lang && pick(b.body));
  if (blocks.length !== 1) throw new Error(`expected one ${lang} block in ${doc} for this fixture, found ${blocks.length}`);
  return blocks[0]!.body;
}

let commands: DocCommand[];
const hasPython = spawnSync('/bin/sh', ['-c', 'command -v python'], { stdio: 'ignore' }).status === 0;

beforeAll(async () => {
  assertBuilt();
  commands = await extractDocCommands(REPO);
});

const shells: DocShell[] = [];
async function newShell(): Promise<DocShell> {
  const sh = await docShell();
  shells.push(sh);
  return sh;
}
// Every command has exited by now (serveBounded waits for the exit, runShell for the end).
afterAll(() => Promise.all(shells.map((sh) => rm(sh.dir, { recursive: true, force: true }))));

describe('doc commands', () => {
  it('every shell command in README.md and docs/*.md is classified, and every table entry is in the docs', () => {
    const unknown = commands
      .filter((c) => !TABLE[c.doc]?.[c.command])
      .map((c) => `new command in ${c.doc}:${c.line}: ${c.command} — classify it in the TABLE of docs-commands.int.test.ts`);
    const seen = new Set(commands.map((c) => keyOf(c.doc, c.command)));
    const stale = Object.entries(TABLE).flatMap(([doc, entries]) =>
      Object.keys(entries)
        .filter((cmd) => !seen.has(keyOf(doc, cmd)))
        .map((cmd) => `${doc}: ${cmd} is no longer in the docs`),
    );
    expect([...unknown, ...stale]).toEqual([]);
    for (const [doc, entries] of Object.entries(TABLE)) {
      for (const [cmd, d] of Object.entries(entries)) if ('skip' in d) expect(d.skip.length, `${doc}: ${cmd} needs a reason`).toBeGreaterThan(10);
    }
  });

  it.concurrent('README.md: the quick tour runs as written', { timeout: 120_000 }, async () => {
    const doc = 'README.md';
    const sh = await newShell();
    // Fixtures a reader of the tour has: a train.py here and in ./project (one line each), the
    // launch-config.yaml the README shows, and a job.yaml (a local-process spec: one success, then one failure).
    await writeFile(join(sh.cwd, 'train.py'), 'import sys\nprint("training", sys.argv[1:])\n');
    await mkdir(join(sh.cwd, 'project'));
    await writeFile(join(sh.cwd, 'project', 'train.py'), 'import os\nprint("seed", os.environ.get("SEED"), "in", os.getcwd())\n');
    await writeFile(join(sh.cwd, 'launch-config.yaml'), await docBlock(doc, 'yaml', (b) => b.includes('kill_grace_period')));
    const idLine = /^[a-z0-9]+\n$/;

    let idDefault = '';
    let idGpu = '';
    const enqueue1 = 'launch-agent enqueue -- python train.py --lr 0.1';
    if (runs(doc, enqueue1)) {
      const r = await runShell(sh, enqueue1);
      expectExit(r, 0, enqueue1);
      expect(r.stdout, 'prints the item id').toMatch(idLine);
      idDefault = r.stdout.trim();
    }
    const enqueue2 = 'launch-agent enqueue -q gpu --priority high --env SEED=1 --cwd ./project -- python train.py';
    if (runs(doc, enqueue2)) {
      const r = await runShell(sh, enqueue2);
      expectExit(r, 0, enqueue2);
      expect(r.stdout).toMatch(idLine);
      idGpu = r.stdout.trim();
    }
    const status = 'launch-agent status';
    if (runs(doc, status)) {
      const r = await runShell(sh, status);
      expectExit(r, 0, status);
      expect(r.stdout).toMatch(/^ID\s+QUEUE\s+PRIORITY\s+STATE\s+RUN\s+HELD BY\s+AGE\s+RESULT\s+WARN$/m);
      for (const id of [idDefault, idGpu].filter(Boolean)) expect(r.stdout).toMatch(new RegExp(`^${id}\\s.*\\bqueued\\b`, 'm'));
    }
    const statusJson = 'launch-agent status --json';
    if (runs(doc, statusJson)) {
      const r = await runShell(sh, statusJson);
      expectExit(r, 0, statusJson);
      const view = JSON.parse(r.stdout) as { items: { id: string; state: string; queue: string; priority: string }[]; agents: unknown[] };
      expect(view.items.map((i) => [i.id, i.queue, i.priority, i.state])).toEqual(
        [idDefault && [idDefault, 'default', 'medium', 'queued'], idGpu && [idGpu, 'gpu', 'high', 'queued']].filter(Boolean),
      );
      expect(view.agents).toEqual([]);
    }

    const twoQueues = 'launch-agent -q gpu -q cpu -j 4';
    if (runs(doc, twoQueues)) {
      // Bounded: serves until the gpu item ran, then Ctrl-C.
      const ended = new RegExp(`\\[${idGpu || '\\w+'}\\] (finished|failed)`);
      const r = await serveBounded(sh, twoQueues, (run) => ended.test(run.stderr()));
      expectExit(r, 0, twoQueues);
      expect(r.stderr).toContain('serving gpu, cpu from the embedded queue');
      if (hasPython && idGpu) {
        // --env and --cwd reached the job: its log says so.
        expect(r.stderr).toMatch(new RegExp(`\\[${idGpu}\\] finished in .* \\(exit 0\\)`));
        expect(await readText(join(sh.stateDir, 'logs', `${idGpu}.log`))).toBe(`seed 1 in ${join(sh.cwd, 'project')}\n`);
      }
    }
    const once = 'launch-agent --exit-when-idle';
    if (runs(doc, once)) {
      const r = await runShell(sh, once);
      expectExit(r, 0, once);
      expect(r.stderr).toContain('agent stopped (idle: the queue is empty and no job runs)');
      if (idDefault) expect(r.stderr).toMatch(new RegExp(`\\[${idDefault}\\] ${hasPython ? 'finished in .* \\(exit 0\\)' : '(finished|failed)'}`));
    }
    const json = 'launch-agent -v --log-format json';
    if (runs(doc, json)) {
      // A job to serve, put there outside the doc's commands, so "with the jobs' output" can be seen.
      const enq = await cli(['enqueue', '--', 'sh', '-c', 'echo epoch 1 done'], sh.env);
      expectExit(enq, 0, 'enqueue (fixture)');
      const r = await serveBounded(sh, json, (run) => run.stderr().includes('"event":"item:finished"'));
      expectExit(r, 0, json);
      const lines = r.stderr.split('\n').filter(Boolean);
      for (const line of lines) expect(() => JSON.parse(line) as unknown, `not a JSON object: ${line}`).not.toThrow();
      const events = lines.map((l) => JSON.parse(l) as { event?: string; line?: string; message?: string });
      expect(events.map((e) => e.event)).toEqual(expect.arrayContaining(['agent:registered', 'item:claimed', 'run:log', 'item:finished', 'agent:stopped']));
      expect(JSON.stringify(events.filter((e) => e.event === 'run:log'))).toContain('epoch 1 done');
    }

    const serve = 'launch-agent';
    const wait = 'launch-agent enqueue --spec job.yaml --wait';
    if (runs(doc, serve)) {
      const r = await serveBounded(
        sh,
        serve,
        (run) => / registered \(id /.test(run.stderr()),
        async () => {
          if (!runs(doc, wait)) return;
          // While it serves, --wait on a job that succeeds exits 0 and on one that fails exits 1, as the README says.
          await writeFile(join(sh.cwd, 'job.yaml'), 'resource: local-process\noverrides:\n  entry_point: [sh, -c, "echo trained"]\n');
          const ok = await runShell(sh, wait);
          expectExit(ok, 0, wait);
          expect(ok.stdout).toMatch(idLine);
          await writeFile(join(sh.cwd, 'job.yaml'), 'resource: local-process\noverrides:\n  entry_point: [sh, -c, "echo diverged; exit 3"]\n');
          const bad = await runShell(sh, wait);
          expectExit(bad, 1, wait);
          expect(bad.stdout).toMatch(idLine);
        },
      );
      expectExit(r, 0, serve);
      expect(r.stderr).toContain('serving default from the embedded queue');
      // "Ctrl-C or SIGTERM stops cleanly: … the agent reports `KILLED`."
      const agentId = / registered \(id ([^)]+)\)/.exec(r.stderr)![1];
      expect((await queueStatus(sh.env)).agents.find((a) => a.id === agentId)?.status).toBe('KILLED');
    }

    const check = 'launch-agent config check -c launch-config.yaml';
    if (runs(doc, check)) {
      const r = await runShell(sh, check);
      expectExit(r, 0, check);
      // "effective values and where each came from"
      expect(r.stdout).toMatch(/max_jobs\s+2\s+file/);
      expect(r.stdout).toMatch(/kill_grace_period\s+10\s+file/);
      expect(r.stdout).toMatch(/queues\s+\["default"\]\s+file/);
    }
    const schema = 'launch-agent config schema > launch-config.schema.json';
    if (runs(doc, schema)) {
      const r = await runShell(sh, schema);
      expectExit(r, 0, schema);
      const parsed = JSON.parse(await readFile(join(sh.cwd, 'launch-config.schema.json'), 'utf8')) as { properties: Record<string, unknown> };
      expect(Object.keys(parsed.properties)).toEqual(expect.arrayContaining(['queues', 'max_jobs', 'stopped_run_timeout', 'kill_grace_period']));
    }
    expectAllRun(doc);
  });

  it.concurrent('docs/cli.md: a queue config, enqueue and check with template variables', { timeout: 120_000 }, async () => {
    const doc = 'docs/cli.md';
    const sh = await newShell();
    // Fixtures: gpu.yaml is the queue config docs/launch-spec.md shows (cpu, mem, retries); job.yaml a
    // minimal spec with an image; a kube config, as a reader of a kubernetes queue has one (check
    // builds the Job offline: the server at 127.0.0.1:1 is never contacted).
    await writeFile(
      join(sh.cwd, 'gpu.yaml'),
      await docBlock('docs/launch-spec.md', 'yaml', (b) => b.startsWith('resource: kubernetes') && b.includes('{{mem}}')),
    );
    await writeFile(join(sh.cwd, 'job.yaml'), 'docker:\n  docker_image: registry.example.com/ml/train:1\noverrides:\n  entry_point: [python, train.py]\n');
    await mkdir(join(sh.home, '.kube'));
    await writeFile(
      join(sh.home, '.kube', 'config'),
      'apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u, namespace: ml}}]\ncurrent-context: x\n',
    );

    const create = 'launch-agent queue create gpu --file gpu.yaml';
    if (runs(doc, create)) {
      const r = await runShell(sh, create);
      expectExit(r, 0, create);
      expect(r.stderr).toContain('queue "gpu": config created (resource kubernetes; template variables cpu:integer=2, mem:number, retries:integer=1)');
    }
    const enqueue = 'launch-agent enqueue -q gpu --spec job.yaml --template-var cpu=4 --template-var mem=16';
    if (runs(doc, enqueue)) {
      const r = await runShell(sh, enqueue);
      expectExit(r, 0, enqueue);
      expect(r.stdout).toMatch(/^[a-z0-9]+\n$/);
      expect(r.stderr).toContain(`queue "gpu"'s config merged in: resource kubernetes; template variables cpu=4, mem=16, retries=1`);
    }
    const check = 'launch-agent check -q gpu --spec job.yaml --template-var mem=16';
    if (runs(doc, check)) {
      const before = (await queueStatus(sh.env)).items.length;
      const r = await runShell(sh, check);
      expectExit(r, 0, check);
      // "the merged Job, nothing queued": cpu from the default, mem from the flag.
      expect(r.stdout).toMatch(/^kind: batch\/v1 Job$/m);
      expect(r.stdout).toMatch(/^\s+cpu: 2$/m);
      expect(r.stdout).toMatch(/^\s+memory: 16Gi$/m);
      expect(r.stdout).toMatch(/^\s+image: registry\.example\.com\/ml\/train:1$/m);
      expect(r.stderr).not.toMatch(/problem/);
      expect((await queueStatus(sh.env)).items).toHaveLength(before);
    }
    expectAllRun(doc);
  });

  it.concurrent('docs/metrics.md: the health port answers, then Ctrl-C stops the agent with exit 0', { timeout: 120_000 }, async () => {
    const doc = 'docs/metrics.md';
    const sh = await newShell();
    const base = 'http://127.0.0.1:9464';
    // The doc names port 9464, so the three run one after another, each once the port is free.
    const scenarios: { command: string; bind: string; processMetrics: boolean }[] = [
      { command: 'launch-agent --health-port 9464', bind: '0100007F', processMetrics: false },
      { command: 'launch-agent --health-port 9464 --health-host 0.0.0.0', bind: '00000000', processMetrics: false },
      { command: 'launch-agent --health-port 9464 --process-metrics', bind: '0100007F', processMetrics: true },
    ];
    for (const s of scenarios) {
      if (!runs(doc, s.command)) continue;
      await waitFor(() => portFree(9464), { what: 'port 9464 to be free', timeoutMs: 30_000, intervalMs: 100 });
      const r = await serveBounded(
        sh,
        s.command,
        async () => {
          const res = await fetch(`${base}/readyz`);
          return res.status === 200 && ((await res.json()) as { ok: boolean }).ok;
        },
        async () => {
          expect(await listeningOn(9464)).toContain(s.bind);
          const health = await fetch(`${base}/healthz`);
          expect(health.status).toBe(200);
          const metrics = await fetch(`${base}/metrics`);
          expect(metrics.headers.get('content-type')).toContain('text/plain');
          const text = await metrics.text();
          expect(text).toMatch(/^# TYPE launch_jobs_claimed_total counter$/m);
          if (s.processMetrics) expect(text).toMatch(/^process_cpu_user_seconds_total /m);
          else expect(text).not.toMatch(/^process_cpu_user_seconds_total /m);
          expect(/^nodejs_/m.test(text)).toBe(s.processMetrics);
        },
      );
      expectExit(r, 0, s.command);
    }
    expectAllRun(doc);
  });
});

function portFree(port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const server = createServer();
    server.once('error', () => resolveFree(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolveFree(true)));
  });
}

/** The local addresses (hex, as /proc/net/tcp writes them) listening on `port`. */
async function listeningOn(port: number): Promise<string[]> {
  if (!existsSync('/proc/net/tcp')) return ['0100007F', '00000000'];
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  return (await readFile('/proc/net/tcp', 'utf8'))
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[1]?.endsWith(`:${hexPort}`) && f[3] === '0A')
    .map((f) => f[1]!.split(':')[0]!);
}
