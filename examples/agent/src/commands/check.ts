import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { isSecretEnvName, REDACTED, silentLogger, type AgentConfig, type LaunchSpec, type RunnerCapabilities, type RunRequest } from '@launch/core';
import { generateRunId, planRun } from '@launch/core/internal';
import yaml from 'js-yaml';
import { CONFIG_FLAGS, CONFIG_FLAGS_HELP, SPEC_FLAGS, sourceFlag } from '../flags.js';
import type { Io } from '../io.js';
import { loadConfig } from '../load-config.js';
import { cliRedactor } from '../redaction.js';
import { kubernetesAvailable } from '../select-runners.js';
import { buildSpec, readSpecFile } from '../spec-input.js';
import { parseCommandArgs, UsageError } from '../usage.js';
import { prepareQueueSpec } from './queue.js';

export const CHECK_HELP = `Usage: launch-agent check --queue NAME [options] -- CMD [ARGS...]
       launch-agent check --queue NAME --spec FILE [options]

A dry run: prints what the agent would submit for this job, without queueing or running anything:
the Kubernetes manifest (YAML), the container's image, command and environment, or a local
process's command line and environment. Macros (\${run_id}, \${image_uri}, …) are filled; the API
key and secret-named variables show as [REDACTED]. Exit 2, with every problem listed, when the
spec, the manifest (checked against its kind's Kubernetes schema) or the resource is wrong.

Options:
  -q, --queue NAME        the queue (default: the config's first queue, else "default")
      --spec FILE         a launch spec in JSON or YAML, as for enqueue
      --env NAME=VALUE    environment for the job; repeatable
      --template-var NAME=VALUE
                          a value for the queue config's {{NAME}}, as for enqueue; repeatable
      --cwd DIR           working directory of the job (local processes)
      --context DIR       the job's code (built into an image by the agent)
      --name NAME         run name
      --project NAME      W&B project
      --entity NAME       W&B entity
      --json              print the plan as JSON on stdout ({"ok", "problems", "request", "submission", …})
${CONFIG_FLAGS_HELP}

Everything after "--" is the command, passed as is (no shell).`;

export const CHECK_FLAGS = {
  ...CONFIG_FLAGS,
  ...SPEC_FLAGS,
  json: { type: 'boolean' },
} as const;

/** One thing that would make the job fail or run differently from what it says. */
export interface Problem {
  path: string;
  message: string;
}

/** What `check` found: the request the agent would build and what its runner would submit. */
export interface CheckResult {
  ok: boolean;
  queue: string;
  resource: string;
  runner?: 'kubernetes' | 'local-container' | 'local-process';
  problems: Problem[];
  warnings: Problem[];
  notes: string[];
  request?: Pick<RunRequest, 'runId' | 'image' | 'entryPoint' | 'args' | 'env' | 'resourceArgs' | 'workingDir'>;
  submission?: Record<string, unknown>;
}

/** The agent's default resource when a spec names none (core's `defaultResource`). */
const DEFAULT_RESOURCE = 'local-process';
const CAPABILITIES: Record<'kubernetes' | 'local-container' | 'local-process', RunnerCapabilities> = {
  kubernetes: { adopt: true, remote: true, needsImage: true },
  'local-container': { adopt: true, remote: false, needsImage: true },
  'local-process': { adopt: false, remote: false, needsImage: false },
};

export async function checkCommand(argv: string[], io: Io): Promise<number> {
  const { values: v, positionals, rest } = parseCommandArgs('check', argv, CHECK_FLAGS, true);
  if (v.help) {
    io.stdout.write(CHECK_HELP + '\n');
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"; put the command after "--"`, 'check');
  return dryRun(io, { ...v, command: rest, json: v.json === true });
}

/** What `check` and `enqueue --dry-run` take. */
export interface DryRunInput {
  config?: string;
  'state-dir'?: string;
  source?: string;
  queue?: string;
  spec?: string;
  env?: string[];
  'template-var'?: string[];
  cwd?: string;
  context?: string;
  name?: string;
  project?: string;
  entity?: string;
  command: string[];
  json: boolean;
}

/** Runs the dry run and prints it; 0 when nothing is wrong, 2 with every problem listed otherwise. */
export async function dryRun(io: Io, input: DryRunInput): Promise<number> {
  const { config, origins } = await loadConfig(io, input.config, { stateDir: input['state-dir'], source: sourceFlag('check', input.source) });
  const secrets: string[] = [];
  const result = await planDryRun(io, config, input, secrets, origins);
  const redactor = cliRedactor(io.env, config.api_key);
  for (const secret of secrets) redactor.add(secret);
  const text = input.json ? JSON.stringify(result, null, 2) + '\n' : render(result);
  io.stdout.write(redactor.redact(text));
  if (!input.json) {
    for (const w of result.warnings) io.stderr.write(redactor.redact(`launch: warning: ${w.path ? `${w.path}: ` : ''}${w.message}\n`));
    for (const p of result.problems) io.stderr.write(redactor.redact(`launch: problem: ${p.path ? `${p.path}: ` : ''}${p.message}\n`));
    if (!result.ok)
      io.stderr.write(`launch: ${result.problems.length} problem${result.problems.length === 1 ? '' : 's'}: the agent would not run this job as it is\n`);
  }
  return result.ok ? 0 : 2;
}

/** Builds the plan (no output): the spec as enqueue builds it, the request as the agent builds it, the runner's submission. */
export async function planDryRun(
  io: Io,
  config: AgentConfig,
  input: DryRunInput,
  secrets: string[] = [],
  origins?: Record<string, string>,
): Promise<CheckResult> {
  const queue = input.queue ?? config.queues[0] ?? 'default';
  const problems: Problem[] = [];
  const warnings: Problem[] = [];
  const notes: string[] = [];
  let spec: LaunchSpec;
  try {
    const base = input.spec ? await readSpecFile(input.spec, 'check') : undefined;
    const flags = {
      command: input.command,
      env: input.env ?? [],
      cwd: input.cwd,
      context: input.context,
      name: input.name,
      project: input.project,
      entity: input.entity,
    };
    const built = buildSpec(base, flags, io.cwd, 'check', input.spec);
    // The embedded queue's config merged in, as enqueue stores the item.
    const queued = await prepareQueueSpec({ io, config, origins, queue, spec: built.spec, base, templateVars: input['template-var'] ?? [], command: 'check' });
    spec = queued.merged;
    warnings.push(...[...built.warnings, ...queued.warnings].map((w) => ({ path: w.path, message: w.message })));
    notes.push(...queued.notes);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    problems.push({ path: 'spec', message: error.message });
    return { ok: false, queue, resource: '', problems, warnings, notes };
  }
  const resource = spec.resource ?? DEFAULT_RESOURCE;
  const runner =
    resource === 'kubernetes'
      ? 'kubernetes'
      : resource === 'local-container' || resource === 'local'
        ? 'local-container'
        : resource === 'local-process'
          ? 'local-process'
          : undefined;
  if (!runner) {
    problems.push({ path: 'resource', message: `no runner handles resource "${resource}" (this agent runs: local-process, local-container, kubernetes)` });
    return { ok: false, queue, resource, problems, warnings, notes };
  }
  if (runner === 'kubernetes' && !kubernetesAvailable(io.env, io.homedir)) {
    problems.push({
      path: 'resource',
      message:
        'resource "kubernetes" needs a kube config ($KUBECONFIG, ~/.kube/config or an in-cluster service account): this agent would have no Kubernetes runner',
    });
  }

  const named = spec.docker?.docker_image ?? spec.image_uri ?? undefined;
  const needsBuild = named === undefined && CAPABILITIES[runner].needsImage && Boolean(spec.uri || spec.job);
  const image = named ?? (needsBuild ? '<image built from the job>' : undefined);
  if (needsBuild) notes.push('the job is built into an image first; "<image built from the job>" stands for its name');
  const runId = spec.run_id ?? generateRunId();
  if (!spec.run_id) notes.push(`run id ${runId} is made up for this dry run: each run gets a new one`);
  const request = planRun(spec, {
    runId,
    item: { id: `dry-run-${runId}`, queue },
    image,
    resource,
    runner: { capabilities: CAPABILITIES[runner] },
    agentName: io.env.LAUNCH_AGENT_NAME ?? io.env.WANDB_RELEASE_NAME ?? hostname(),
    env: io.env,
    entity: config.entity ?? undefined,
    baseUrl: config.base_url ?? undefined,
    apiKey: config.api_key ?? undefined,
  });
  // The caller's redactor hides these wherever they appear (the spec annotation of a manifest holds the spec's env).
  for (const [k, v] of Object.entries(request.env)) if (isSecretEnvName(k) || k === 'WANDB_API_KEY') secrets.push(v);
  if (spec._wandb_api_key) secrets.push(spec._wandb_api_key);
  const shown = {
    runId,
    image: request.image,
    entryPoint: request.entryPoint,
    args: request.args,
    env: maskEnv(request.env),
    resourceArgs: request.resourceArgs,
    workingDir: request.workingDir,
  };

  let submission: Record<string, unknown>;
  if (runner === 'kubernetes') {
    const { createKubernetesRunner } = await import('@launch/runners/kubernetes');
    // The kube config the agent would read (client-node reads $KUBECONFIG from the process; a test's Io may differ).
    const kubeconfigPath = io.env.KUBECONFIG?.split(':').find((p) => p && existsSync(p));
    const k8s = createKubernetesRunner({
      agentName: request.agentName,
      secureMode: config.secure_mode ?? false,
      logger: silentLogger,
      ...(kubeconfigPath ? { kubeconfigPath } : {}),
    });
    try {
      const plan = k8s.plan(request);
      for (const i of plan.issues) {
        const path =
          i.path.startsWith('additional_services') || i.path.startsWith('overrides.')
            ? i.path
            : i.path
              ? `resource_args.kubernetes.${i.path}`
              : 'resource_args.kubernetes';
        problems.push({ path, message: i.message });
      }
      submission = { namespace: plan.namespace, kind: plan.kind, manifest: maskManifestEnv(plan.manifest), services: plan.services.map(maskManifestEnv) };
    } finally {
      await k8s.close();
    }
  } else if (runner === 'local-container') {
    if (!image)
      problems.push({
        path: 'docker.docker_image',
        message: 'the job has no image: give docker.docker_image, or code (uri or --context) for the agent to build',
      });
    submission = { image, entryPoint: request.entryPoint, args: request.args, env: maskEnv(request.env), dockerArgs: request.resourceArgs };
  } else {
    if (named) problems.push({ path: 'docker.docker_image', message: 'a local process cannot run an image: use resource local-container or kubernetes' });
    const commandLine = [...request.entryPoint, ...request.args];
    if (commandLine.length === 0) problems.push({ path: 'overrides.entry_point', message: 'the job has no entry point to run as a local process' });
    submission = { command: commandLine, cwd: request.workingDir ?? io.cwd, env: maskEnv(request.env) };
  }
  return { ok: problems.length === 0, queue, resource, runner, problems, warnings, notes, request: shown, submission };
}

/** The environment with the API key and secret-named variables as `[REDACTED]`. */
function maskEnv(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) out[k] = isSecretEnvName(k) || k === 'WANDB_API_KEY' ? REDACTED : v;
  return out;
}

function render(r: CheckResult): string {
  const lines: string[] = [];
  lines.push(`queue: ${r.queue}`);
  if (r.resource) lines.push(`resource: ${r.resource}${r.runner ? ` (runner ${r.runner})` : ''}`);
  for (const n of r.notes) lines.push(`note: ${n}`);
  const s = r.submission;
  if (s && r.runner === 'kubernetes') {
    lines.push(`namespace: ${String(s.namespace)}`, `kind: ${String(s.kind)}`);
    if (s.manifest) lines.push('---', yaml.dump(s.manifest, { noRefs: true, lineWidth: 120 }).trimEnd());
    for (const m of (s.services as unknown[]) ?? []) lines.push('---', yaml.dump(m, { noRefs: true, lineWidth: 120 }).trimEnd());
  } else if (s && r.runner === 'local-container') {
    lines.push(`image: ${String(s.image ?? '(none)')}`);
    lines.push(`entry point: ${JSON.stringify(s.entryPoint)}`, `args: ${JSON.stringify(s.args)}`);
    if (Object.keys(s.dockerArgs as object).length > 0) lines.push('docker args:', yaml.dump(s.dockerArgs).trimEnd().replace(/^/gm, '  '));
    lines.push('environment:', ...envLines(s.env as Record<string, string>));
  } else if (s) {
    lines.push(`command: ${JSON.stringify(s.command)}`, `cwd: ${String(s.cwd)}`, 'environment:', ...envLines(s.env as Record<string, string>));
  }
  return lines.join('\n') + '\n';
}

function envLines(env: Record<string, string>): string[] {
  return Object.entries(env).map(([k, v]) => `  ${k}=${v}`);
}

/** Manifest env values of secret-named variables as `[REDACTED]` (the API key itself is a secretKeyRef). */
function maskManifestEnv(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(maskManifestEnv);
  if (!value || typeof value !== 'object') return value;
  const o = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k] = maskManifestEnv(v);
  if (typeof o.name === 'string' && typeof o.value === 'string' && isSecretEnvName(o.name)) out.value = REDACTED;
  return out;
}
