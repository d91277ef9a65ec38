/**
 * One error family for every package (see STYLE.md): a marker symbol so that
 * `LaunchError.isInstance()` works across duplicate installs where `instanceof` breaks.
 */
const marker = 'launch.error';
const symbol = Symbol.for(marker);

/** Where in a job's life a failure happened; W&B's `failRunQueueItem` stages. */
export type Stage = 'agent' | 'build' | 'run';

/** Stable categories users meet, each with an actionable hint (Prefect-style diagnosis). */
export type DiagnosisCategory =
  | 'ImagePullError'
  | 'Unschedulable'
  | 'OOMKilled'
  | 'CrashLoopBackOff'
  | 'Evicted'
  | 'Preempted'
  | 'BuildFailed'
  | 'RegistryAuth'
  | 'ContextUpload'
  | 'StartTimeout'
  | 'InvalidSpec'
  | 'PermissionDenied'
  | 'NonZeroExit';

export interface LaunchErrorOptions {
  /** Stable machine-readable code, e.g. `config.invalid`, `spec.invalid`, `build.no_builder`. */
  code: string;
  message: string;
  stage?: Stage;
  retryable?: boolean;
  /** One line the user can act on. */
  hint?: string;
  category?: DiagnosisCategory;
  cause?: unknown;
}

export class LaunchError extends Error {
  private readonly [symbol] = true;
  readonly code: string;
  readonly stage: Stage;
  readonly retryable: boolean;
  readonly hint: string | undefined;
  readonly category: DiagnosisCategory | undefined;

  constructor(options: LaunchErrorOptions) {
    super(options.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LaunchError';
    this.code = options.code;
    this.stage = options.stage ?? 'agent';
    this.retryable = options.retryable ?? false;
    this.hint = options.hint;
    this.category = options.category;
  }

  static isInstance(error: unknown): error is LaunchError {
    return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[symbol] === true;
  }

  /** Message plus hint, the text reported to a queue. */
  describe(): string {
    return this.hint ? `${this.message} (hint: ${this.hint})` : this.message;
  }
}

/** One problem found while validating an input: where, what was expected, what was found. */
export interface ValidationIssue {
  /** Dotted path such as `builder.type` or `overrides.args[2]`; empty for the root. */
  path: string;
  expected: string;
  found: string;
  message: string;
}

/** A validation failure listing every bad field. */
export class LaunchValidationError extends LaunchError {
  readonly issues: ValidationIssue[];

  constructor(options: Omit<LaunchErrorOptions, 'message'> & { subject: string; issues: ValidationIssue[] }) {
    const lines = options.issues.map((i) => `  - ${i.path || '(root)'}: ${i.message}`);
    super({ ...options, message: `${options.subject} is invalid:\n${lines.join('\n')}` });
    this.name = 'LaunchValidationError';
    this.issues = options.issues;
  }
}

/** Turns any thrown value into a LaunchError, keeping an existing one as is. */
export function toLaunchError(error: unknown, fallback: { code: string; stage: Stage }): LaunchError {
  if (LaunchError.isInstance(error)) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new LaunchError({ ...fallback, message, cause: error });
}
