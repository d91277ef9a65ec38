import type { LaunchSpec } from '../spec.js';
import type { CallContext, SpecificationVersion } from './common.js';

/** What the agent asks a job resolver: the spec's `job` (W&B's `entity/project/name:alias`) for one item. */
export interface ResolveJobRequest {
  /** The job as the spec names it, e.g. `acme/vision/train:latest` or `train:v3` (entity and project from the spec). */
  job: string;
  spec: LaunchSpec;
  runId: string;
  itemId: string;
  /** Progress of long downloads (`fetched 40.0 of 100.0 MiB of code artifact …`), for people; never carries a secret. */
  onProgress?: (line: string) => void;
}

/** Fields every resolved job has. */
export interface ResolvedJobBase {
  /** The job's full name with its resolved version, `entity/project/name:v3` (the alias made concrete). */
  job: string;
  /** The version alone (`v3`). */
  version: string;
  /** The job's entry point from `wandb-job.json` (`source.entrypoint`); may be empty for image jobs. */
  entryPoint: string[];
  /** `input_types` of the job, when it declares them (W&B checks `overrides.run_config` against them). */
  inputTypes?: unknown;
}

/** An `image` job: run this image as it is, no build. */
export interface ResolvedImageJob extends ResolvedJobBase {
  kind: 'image';
  image: string;
}

/** A `repo` or `artifact` job: its code, fetched to a directory on this machine. */
export interface ResolvedCodeJob extends ResolvedJobBase {
  kind: 'code';
  /** `repo` (a git commit, with `diff.patch` applied) or `artifact` (a W&B `code` artifact). */
  source: 'repo' | 'artifact';
  /**
   * The fetched code, read-only for the agent and shared between items of the same job version (cached by
   * digest); `requirements.frozen.txt` of the job is in it (W&B copies it beside the code).
   */
  codeDir: string;
  /** Where the code comes from, for people and for runners that fetch it themselves (`git@…#<commit>`, the artifact name). */
  sourceString: string;
  /** `source.build_context`, `source.dockerfile`, `source.base_image` and `runtime` of `wandb-job.json`. */
  buildContext?: string;
  dockerfile?: string;
  baseImage?: string;
  runtime?: string;
}

export type ResolvedJob = ResolvedImageJob | ResolvedCodeJob;

/**
 * Turns a spec's `job` into something to run (W&B's `fetch_and_validate_project`): the job artifact is read
 * and its code fetched. Throws a LaunchError with stage `agent` naming the job when it cannot (an unknown
 * job or alias, a deleted code artifact, an unknown `source_type`, a download that fails its digest check).
 */
export interface JobResolver {
  readonly specificationVersion: SpecificationVersion;
  /** `wandb`, … */
  readonly name: string;
  resolve(request: ResolveJobRequest, ctx: CallContext): Promise<ResolvedJob>;
  /**
   * Optional: the agent is done with a job `resolve` returned (its code copied for the run or built into an image),
   * so a cache may evict that code again. Called once per resolved job, also when preparing the run failed.
   */
  release?(job: ResolvedJob): void;
}
