import type { LaunchSpec } from '../spec.js';
import type { CallContext, SpecificationVersion } from './common.js';
import type { Registry } from './registry.js';
import type { ContextStore } from './context-store.js';

export interface BuildRequest {
  spec: LaunchSpec;
  runId: string;
  itemId: string;
  /** Directory holding the build context, when the job has code. */
  contextDir?: string;
  /** Where the image goes; the builder pushes there when set. */
  registry?: Registry;
  /** Where a remote builder uploads the context. */
  contextStore?: ContextStore;
  /** Progress lines (build output), shown to people and kept for failure reports. */
  onProgress?: (line: string) => void;
  /** Problems the build worked around (e.g. packages it had to leave out), reported as queue warnings at stage `build`. */
  onWarning?: (message: string) => void;
  /**
   * What a W&B job says about its code (`wandb-job.json`): build context subdirectory, Dockerfile, entry point,
   * Python runtime. The agent does not set it yet (it does not fetch job artifacts); callers that read the
   * job's metadata themselves may.
   */
  job?: { buildContext?: string; dockerfile?: string; entryPoint?: string[]; runtime?: string };
}

export interface BuildResult {
  imageUri: string;
  /** True when an existing image was reused instead of built. */
  cached: boolean;
  /**
   * The entry point the image runs the job with, when the build chose it (W&B's `Dockerfile.wandb` case).
   * The agent then gives it to the runner in place of the spec's `overrides.entry_point`.
   */
  entryPoint?: string[];
}

export interface Builder {
  readonly specificationVersion: SpecificationVersion;
  /** `noop`, `docker`, `kaniko`, … */
  readonly name: string;
  /** Checks the builder can work (tools present, credentials); throws a LaunchError with a hint. */
  verify?(ctx: CallContext): Promise<void>;
  /** Builds (or reuses) the job's image; throws a LaunchError with stage `build`. */
  build(request: BuildRequest, ctx: CallContext): Promise<BuildResult>;
}
