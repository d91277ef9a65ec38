import type { DiagnosisCategory } from '../errors.js';
import type { LaunchSpec } from '../spec.js';
import type { RunState } from '../status.js';
import type { CallContext, SpecificationVersion } from './common.js';

/** A diagnosis of why a run is stuck or failed, with an actionable hint. */
export interface Diagnosis {
  category: DiagnosisCategory;
  message: string;
  hint: string;
}

export interface RunStatus {
  state: RunState;
  /** Messages not yet reported (W&B sends them as queue warnings). */
  messages: string[];
  exitCode?: number | null;
  diagnosis?: Diagnosis;
  /** Tail of the run's log when it failed, captured before the backend may lose it. */
  logTail?: string;
}

/** Everything a runner needs to start a job; produced by the agent from the validated spec. */
export interface RunRequest {
  /** The W&B run id (kept across preemption requeues). */
  runId: string;
  /** The queue item id (W&B's trace id), the key for idempotent creation. */
  itemId: string;
  queue: string;
  agentName: string;
  spec: LaunchSpec;
  /** Resolved image, when the job runs in one. */
  image?: string;
  /** Entry point and args; either may be empty. */
  entryPoint: string[];
  args: string[];
  /** Environment for the run, `WANDB_*` injected; values may be secrets (never log them). */
  env: Record<string, string>;
  /** `resource_args[resource]` with macros filled and the `builder` sub-key removed. */
  resourceArgs: Record<string, unknown>;
  /**
   * Working directory: for local runs a directory of this machine; for runs with `code`, a path inside the
   * run's file system (under `code.mountPath`).
   */
  workingDir?: string;
  /**
   * A W&B job's code, fetched by the agent, for a run on a base image with the code mounted (W&B's NoOp
   * builder with a `repo` or `artifact` job). `dir` is a copy for this run alone on the agent's machine; the
   * runner makes it appear at `mountPath` (a bind mount for containers). Only sent to runners with the
   * `mountsCode` capability. `source` says where the code comes from, for a runner that fetches it again inside
   * the run (Kubernetes' init container) instead of copying `dir`; code with no `source` (a directory of the
   * agent's machine) can only be copied from `dir`.
   */
  code?: { dir: string; mountPath: string; source?: CodeSource };
  /**
   * The item was acked by an earlier claim that was lost, so its run may already exist: follow that run
   * and never create one. A runner that finds none throws a LaunchError with code `run.outcome_lost`.
   * Only sent to runners with the `adopt` capability.
   */
  attachOnly?: boolean;
}

/**
 * Where a run's code comes from. `wandb-job`: the W&B job at its resolved version (`entity/project/name:v3`), whose
 * resolution (the same digest checks, `diff.patch` applied to a `repo` job) gives this code again anywhere with a W&B
 * API key.
 */
export interface CodeSource {
  kind: 'wandb-job';
  /** The job with its version made concrete, `entity/project/name:v3` (never an alias such as `latest`). */
  job: string;
  /** `repo` (a git commit, with `diff.patch`) or `artifact` (a W&B `code` artifact). */
  type: 'repo' | 'artifact';
  /** For people: the code artifact (`entity/project/name:v2`) or `<remote>#<commit>`, credentials scrubbed. */
  sourceString: string;
}

export interface LogChunk {
  stream: 'stdout' | 'stderr';
  text: string;
}

/** A run a runner started (W&B's `AbstractRun`). */
export interface SubmittedRun {
  /** Backend id (pid, Job name, …). */
  readonly id: string;
  readonly runId: string;
  readonly itemId: string;
  /** For adopted runs: the queue the item came from and its raw spec, when the backend kept them (annotations). */
  readonly queue?: string;
  readonly spec?: unknown;
  status(): Promise<RunStatus>;
  /** Called on every state change and new message; returns an unsubscribe function. */
  onStatus(listener: (status: RunStatus) => void): () => void;
  /** Called with log output as it arrives, when the backend streams logs. */
  onLog?(listener: (chunk: LogChunk) => void): () => void;
  /** The run's log so far (possibly a tail). */
  logs(): Promise<string>;
  /** Resolves with the terminal status. */
  wait(): Promise<RunStatus>;
  /** Stops the run; resolves once the backend accepted the request. Idempotent. */
  cancel(): Promise<void>;
  /**
   * Called once the agent has recorded the run's end at its queue. Until then a backend keeps the
   * run's outcome (a Kubernetes runner holds its Job with a finalizer), so an agent that dies before
   * reporting finds it again after a restart; afterwards the backend may let it go.
   */
  reported?(): Promise<void>;
}

export interface RunnerCapabilities {
  /** The runner can find and track its runs after an agent restart (`adopt`). */
  adopt: boolean;
  /** Runs live outside the agent process tree and keep running when the agent exits. */
  remote: boolean;
  /** Jobs need a container image. */
  needsImage: boolean;
  /** The runner mounts a job's fetched code into the run (`RunRequest.code`). */
  mountsCode?: boolean;
}

export interface Runner {
  readonly specificationVersion: SpecificationVersion;
  readonly name: string;
  /**
   * The stage this runner's run messages and diagnoses are reported under as queue warnings (W&B shows
   * them under it), e.g. `Kubernetes`. Default: the runner's `name`.
   */
  readonly warningStage?: string;
  /** `resource` values this runner handles, e.g. `['local-process', 'local']`. */
  readonly resources: readonly string[];
  readonly capabilities: RunnerCapabilities;
  /** Submits the job; throws a LaunchError (stage `run`) when it cannot. */
  run(request: RunRequest, ctx: CallContext): Promise<SubmittedRun>;
  /** Finds runs this agent started before a restart (capability `adopt`); the agent calls it once, at start. */
  adopt?(agentName: string, ctx: CallContext): Promise<SubmittedRun[]>;
  close?(): Promise<void>;
}
