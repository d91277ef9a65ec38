import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Exit codes every command uses: 0 success, 1 failure at run time, 2 bad usage or config. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Bad usage (unknown flag, missing value): printed with a pointer to `--help`, exit 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed<O extends Options> {
  values: {
    [K in keyof O]?: O[K] extends { multiple: true }
      ? O[K]['type'] extends 'boolean'
        ? boolean[]
        : string[]
      : O[K]['type'] extends 'boolean'
        ? boolean
        : string;
  };
  /** Positionals before `--`. */
  positionals: string[];
  /** Everything after `--`, verbatim. */
  rest: string[];
}

/**
 * `node:util` parseArgs with usage errors that name the command, and the words after `--` kept
 * apart (`enqueue -- CMD ARGS` must not treat `CMD`'s flags as ours). parseArgs serves: it is in
 * Node 20, handles `-vv` counts and repeated flags, and adds no dependency.
 */
export function parseCommandArgs<O extends Options>(command: string, argv: string[], options: O, allowPositionals = false): Parsed<O> {
  const dashdash = argv.indexOf('--');
  const own = joinNegativeValues(dashdash === -1 ? argv : argv.slice(0, dashdash), options);
  const rest = dashdash === -1 ? [] : argv.slice(dashdash + 1);
  try {
    const { values, positionals } = parseArgs({ args: own, options, allowPositionals, strict: true });
    return { values: values as Parsed<O>['values'], positionals, rest };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new UsageError(message.replace(/\. To specify a positional argument.*$/s, ''), command);
  }
}

/**
 * parseArgs takes `-1` after a flag for another flag; W&B's CLI accepts `-j -1` (no limit), so a
 * negative number after a string-valued flag is joined to it (`--max-jobs=-1`).
 */
function joinNegativeValues(args: string[], options: Options): string[] {
  const takesValue = (arg: string): string | undefined => {
    const long = arg.startsWith('--') ? arg.slice(2) : undefined;
    const name = long ?? Object.keys(options).find((k) => arg.length === 2 && options[k]?.short === arg.slice(1));
    return name !== undefined && options[name]?.type === 'string' && !name.includes('=') ? name : undefined;
  };
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    const name = arg.startsWith('-') ? takesValue(arg) : undefined;
    if (name !== undefined && next !== undefined && /^-\d+(\.\d+)?$/.test(next)) {
      out.push(`--${name}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

/** Parses a whole number flag, rejecting `3x` and `1.5`. */
export function intFlag(command: string, name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^-?\d+$/.test(value.trim())) throw new UsageError(`--${name} expects a whole number, got "${value}"`, command);
  return Number(value);
}

/** Checks a flag against its allowed values. */
export function choiceFlag<T extends string>(command: string, name: string, value: string | undefined, choices: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(`--${name} must be one of ${choices.join(', ')}; got "${value}"`, command);
  }
  return value as T;
}
