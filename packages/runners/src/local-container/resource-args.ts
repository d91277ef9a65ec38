import { LaunchValidationError, type ValidationIssue } from '@launch/core';
import { closest, describeValue } from '@launch/core/internal';
import { parseBoolean, parseBytes, parseGpus, parseInteger, parseNanoCpus, parsePort, parseUlimit, type GpuRequest, type Ulimit } from './units.js';

/** What `resource_args.local-container` turns into: the parts of a Docker Engine create request. */
export interface ContainerSettings {
  /** From `e`/`env`, in order (a later definition of a name wins, as with repeated `-e`). */
  env: Array<[string, string]>;
  /** Host paths from `env-file`, read when the run starts. */
  envFiles: string[];
  /** `rm`: remove the container once its outcome is known. Default true (W&B always passes `--rm`). */
  remove: boolean;
  platform?: string;
  labels: Record<string, string>;
  config: {
    User?: string;
    WorkingDir?: string;
    Volumes?: Record<string, object>;
    ExposedPorts?: Record<string, object>;
  };
  hostConfig: {
    NetworkMode: string;
    Binds?: string[];
    PortBindings?: Record<string, Array<{ HostIp: string; HostPort: string }>>;
    ShmSize?: number;
    Memory?: number;
    MemoryReservation?: number;
    MemorySwap?: number;
    NanoCpus?: number;
    CpuShares?: number;
    CpuPeriod?: number;
    CpuQuota?: number;
    CpusetCpus?: string;
    CpusetMems?: string;
    PidsLimit?: number;
    Ulimits?: Ulimit[];
    DeviceRequests?: GpuRequest[];
    ExtraHosts?: string[];
    Runtime?: string;
    Init?: boolean;
    ReadonlyRootfs?: boolean;
    Tmpfs?: Record<string, string>;
  };
}

type Issue = (expected: string, found: string) => void;

interface Flag {
  /** The `docker run` flag names that select it (W&B writes one-letter keys as `-x`, longer ones as `--xyz`). */
  names: string[];
  /** Accepts a list (one flag per element, as W&B repeats the flag). */
  list?: boolean;
  /** Accepts an object (`env`, `label`: name → value). */
  dict?: boolean;
  apply(value: unknown, out: ContainerSettings, issue: Issue, key: string): void;
}

const ENV_NAME = /^[^=\0\s]+$/;
const ABSOLUTE = /^\/[^\0]*$/;
const VOLUME_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const RESERVED_LABEL = /^launch\.dev\//;

const str = (value: unknown): string | undefined =>
  typeof value === 'string' ? value : typeof value === 'number' && Number.isFinite(value) ? String(value) : undefined;

/** The `docker run` flags this runner honours, keyed by canonical name. */
const FLAGS: Flag[] = [
  {
    names: ['env', 'e'],
    list: true,
    dict: true,
    apply(value, out, issue, key) {
      if (value && typeof value === 'object' && !Array.isArray(value)) {
        for (const [name, v] of Object.entries(value)) {
          const text = str(v);
          // Values may be secrets: issues name the variable, never its value.
          if (!ENV_NAME.test(name)) issue('a variable name without "=", spaces or NUL', JSON.stringify(name));
          else if (text === undefined || text.includes('\0')) issue(`a string value for ${name}`, 'a value of another type (not shown)');
          else out.env.push([name, text]);
        }
        return;
      }
      const text = str(value);
      if (text === undefined) return issue('"NAME=value"', describeValue(value));
      const eq = text.indexOf('=');
      if (eq < 0) {
        return issue(
          `"NAME=value" (\`-${key.length === 1 ? '' : '-'}${key} NAME\` copies the variable from the agent's environment, which this runner refuses: it could leak the agent's secrets into a job)`,
          JSON.stringify(text.slice(0, 60)),
        );
      }
      const name = text.slice(0, eq);
      if (!ENV_NAME.test(name) || text.includes('\0'))
        return issue('"NAME=value" with a valid name and no NUL', `a variable named ${JSON.stringify(name.slice(0, 60))}`);
      out.env.push([name, text.slice(eq + 1)]);
    },
  },
  {
    names: ['env-file'],
    list: true,
    apply(value, out, issue) {
      const text = str(value);
      if (text === undefined || !ABSOLUTE.test(text)) return issue('an absolute path to a file on the agent host', describeValue(value));
      out.envFiles.push(text);
    },
  },
  {
    names: ['volume', 'v'],
    list: true,
    apply(value, out, issue) {
      const text = str(value);
      if (text === undefined) return issue('"/host/path:/container/path[:ro]", "volume-name:/container/path" or "/container/path"', describeValue(value));
      const parts = text.split(':');
      if (parts.length === 1) {
        if (!ABSOLUTE.test(text)) return issue('an absolute container path for an anonymous volume', describeValue(value));
        out.config.Volumes = { ...out.config.Volumes, [text]: {} };
        return;
      }
      const [source, target, mode, ...rest] = parts as [string, string, string?];
      const modeOk = mode === undefined || /^(ro|rw|z|Z|nocopy|[rs]?(shared|slave|private))(,(ro|rw|z|Z|nocopy|[rs]?(shared|slave|private)))*$/.test(mode);
      if (rest.length > 0 || !ABSOLUTE.test(target) || !modeOk) {
        return issue('"source:/container/path[:options]" with options such as ro or rw', describeValue(value));
      }
      if (!ABSOLUTE.test(source) && !VOLUME_NAME.test(source)) {
        return issue('an absolute host path or a volume name as the source (relative paths have no meaning for the agent)', describeValue(value));
      }
      (out.hostConfig.Binds ??= []).push(text);
    },
  },
  {
    names: ['gpus'],
    apply(value, out, issue) {
      const gpus = parseGpus(value);
      if (!gpus) return issue('"all", a count such as 2, or "device=0,1"', describeValue(value));
      out.hostConfig.DeviceRequests = [gpus];
    },
  },
  {
    names: ['network', 'net'],
    apply(value, out, issue) {
      const text = str(value);
      if (!text || !/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/.test(text))
        return issue('a network name or mode such as "host", "none" or "container:<name>"', describeValue(value));
      out.hostConfig.NetworkMode = text;
    },
  },
  {
    names: ['rm'],
    apply(value, out, issue) {
      const b = parseBoolean(value);
      if (b === undefined) return issue('true or false', describeValue(value));
      out.remove = b;
    },
  },
  {
    names: ['publish', 'p'],
    list: true,
    apply(value, out, issue) {
      const port = parsePort(value);
      if (!port) return issue('"[host-ip:][host-port:]container-port[/tcp|udp|sctp]" with single ports', describeValue(value));
      out.config.ExposedPorts = { ...out.config.ExposedPorts, [port.containerPort]: {} };
      const bindings = (out.hostConfig.PortBindings ??= {});
      (bindings[port.containerPort] ??= []).push({ HostIp: port.hostIp, HostPort: port.hostPort });
    },
  },
  {
    names: ['user', 'u'],
    apply(value, out, issue) {
      const text = str(value);
      if (!text || !/^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$/.test(text)) return issue('a user name or uid, optionally ":group"', describeValue(value));
      out.config.User = text;
    },
  },
  size('shm-size', [], (out, n) => (out.hostConfig.ShmSize = n)),
  size('memory', ['m'], (out, n) => (out.hostConfig.Memory = n)),
  size('memory-reservation', [], (out, n) => (out.hostConfig.MemoryReservation = n)),
  {
    names: ['memory-swap'],
    apply(value, out, issue) {
      const n = value === -1 || value === '-1' ? -1 : parseBytes(value);
      if (n === undefined) return issue('a size such as "2g", or -1 for unlimited swap', describeValue(value));
      out.hostConfig.MemorySwap = n;
    },
  },
  {
    names: ['cpus'],
    apply(value, out, issue) {
      const n = parseNanoCpus(value);
      if (n === undefined) return issue('a positive number of CPUs such as 1.5', describeValue(value));
      out.hostConfig.NanoCpus = n;
    },
  },
  integer('cpu-shares', ['c'], 0, (out, n) => (out.hostConfig.CpuShares = n)),
  integer('cpu-period', [], 0, (out, n) => (out.hostConfig.CpuPeriod = n)),
  integer('cpu-quota', [], -1, (out, n) => (out.hostConfig.CpuQuota = n)),
  integer('pids-limit', [], -1, (out, n) => (out.hostConfig.PidsLimit = n)),
  cpuset('cpuset-cpus', (out, s) => (out.hostConfig.CpusetCpus = s)),
  cpuset('cpuset-mems', (out, s) => (out.hostConfig.CpusetMems = s)),
  {
    names: ['ulimit'],
    list: true,
    apply(value, out, issue) {
      const u = parseUlimit(value);
      if (!u) return issue('"name=soft[:hard]" such as "nofile=1024:2048"', describeValue(value));
      out.hostConfig.Ulimits = [...(out.hostConfig.Ulimits ?? []).filter((x) => x.Name !== u.Name), u];
    },
  },
  {
    names: ['workdir', 'w'],
    apply(value, out, issue) {
      const text = str(value);
      if (!text || !ABSOLUTE.test(text)) return issue('an absolute path inside the container', describeValue(value));
      out.config.WorkingDir = text;
    },
  },
  {
    names: ['platform'],
    apply(value, out, issue) {
      const text = str(value);
      if (!text || !/^[a-z0-9_]+\/[a-z0-9_]+(\/[a-z0-9_]+)?$/.test(text)) return issue('"os/arch[/variant]" such as "linux/amd64"', describeValue(value));
      out.platform = text;
    },
  },
  {
    names: ['add-host'],
    list: true,
    apply(value, out, issue) {
      const text = str(value);
      if (!text || !/^[A-Za-z0-9.-]+:[^\s]+$/.test(text)) return issue('"host:ip" (or "host:host-gateway")', describeValue(value));
      (out.hostConfig.ExtraHosts ??= []).push(text);
    },
  },
  {
    names: ['label', 'l'],
    list: true,
    dict: true,
    apply(value, out, issue) {
      const entries: Array<[string, unknown]> =
        value && typeof value === 'object' && !Array.isArray(value)
          ? Object.entries(value)
          : typeof value === 'string'
            ? [[value.split('=')[0]!, value.includes('=') ? value.slice(value.indexOf('=') + 1) : '']]
            : [];
      if (entries.length === 0 && !(value && typeof value === 'object')) return issue('"name=value" or an object of labels', describeValue(value));
      for (const [name, v] of entries) {
        const text = str(v);
        if (!name || text === undefined) issue('labels with a name and a string value', `label ${JSON.stringify(name)} = ${describeValue(v)}`);
        else if (RESERVED_LABEL.test(name)) issue('a label outside launch.dev/ (the runner sets those)', JSON.stringify(name));
        else out.labels[name] = text;
      }
    },
  },
  {
    names: ['runtime'],
    apply(value, out, issue) {
      const text = str(value);
      if (!text || !/^[A-Za-z0-9_.-]+$/.test(text)) return issue('a runtime name such as "nvidia"', describeValue(value));
      out.hostConfig.Runtime = text;
    },
  },
  bool('init', (out, b) => (out.hostConfig.Init = b)),
  bool('read-only', (out, b) => (out.hostConfig.ReadonlyRootfs = b)),
  {
    names: ['tmpfs'],
    list: true,
    apply(value, out, issue) {
      const text = str(value);
      if (!text || !ABSOLUTE.test(text)) return issue('"/container/path[:options]"', describeValue(value));
      const colon = text.indexOf(':');
      const path = colon < 0 ? text : text.slice(0, colon);
      out.hostConfig.Tmpfs = { ...out.hostConfig.Tmpfs, [path]: colon < 0 ? '' : text.slice(colon + 1) };
    },
  },
];

function size(name: string, aliases: string[], set: (out: ContainerSettings, n: number) => void): Flag {
  return {
    names: [name, ...aliases],
    apply(value, out, issue) {
      const n = parseBytes(value);
      if (n === undefined) return issue('a size such as "512m", "2g" or a number of bytes', describeValue(value));
      set(out, n);
    },
  };
}

function integer(name: string, aliases: string[], min: number, set: (out: ContainerSettings, n: number) => void): Flag {
  return {
    names: [name, ...aliases],
    apply(value, out, issue) {
      const n = parseInteger(value, min);
      if (n === undefined) return issue(`an integer of at least ${min}`, describeValue(value));
      set(out, n);
    },
  };
}

function cpuset(name: string, set: (out: ContainerSettings, s: string) => void): Flag {
  return {
    names: [name],
    apply(value, out, issue) {
      const text = str(value);
      if (!text || !/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(text)) return issue('a list such as "0-3" or "0,2"', describeValue(value));
      set(out, text);
    },
  };
}

function bool(name: string, set: (out: ContainerSettings, b: boolean) => void): Flag {
  return {
    names: [name],
    apply(value, out, issue) {
      const b = parseBoolean(value);
      if (b === undefined) return issue('true or false', describeValue(value));
      set(out, b);
    },
  };
}

/**
 * `docker run` flags this runner refuses, with the reason. Flags that hand the job power over the host are
 * the ones W&B's own `validate_launch_resource_args` keeps off its allow-list.
 */
const REFUSED: Record<string, string> = {
  name: 'the container name is derived from the queue item id, so that one item never gets two containers',
  entrypoint: 'set the entry point with `overrides.entry_point` in the launch spec',
  command: 'not a `docker run` flag; set the command with `overrides.entry_point` and `overrides.args`',
  d: 'the runner always starts containers detached and follows them',
  detach: 'the runner always starts containers detached and follows them',
  i: 'a job has no stdin',
  interactive: 'a job has no stdin',
  t: 'a TTY would merge stdout and stderr; the runner streams them separately',
  tty: 'a TTY would merge stdout and stderr; the runner streams them separately',
  it: 'a job has no stdin or TTY',
  restart: 'a restart policy would rerun the job behind the agent; requeue the item instead',
  pull: 'the runner pulls a missing image itself (runner option `pull`)',
  privileged: 'it gives the job control over the agent host',
  'cap-add': 'it gives the job control over the agent host',
  device: 'it gives the job control over the agent host; use `gpus` for GPUs',
  'security-opt': 'it gives the job control over the agent host',
  pid: "it shares the agent host's process namespace with the job",
  ipc: "it shares the agent host's IPC namespace with the job; use `shm-size` for shared memory",
  uts: "it shares the agent host's UTS namespace with the job",
  userns: 'it changes the user namespace of the job',
  cgroupns: 'it changes the cgroup namespace of the job',
  'cgroup-parent': 'it moves the job out of the engine’s cgroup',
  'volumes-from': "it mounts another container's volumes",
  mount: 'use `volume`/`v` (the `--mount` syntax is not supported)',
};

/** Every key this runner accepts in `resource_args.local-container`. */
export const SUPPORTED_RESOURCE_ARGS: readonly string[] = FLAGS.flatMap((f) => f.names);

const BY_NAME = new Map(FLAGS.flatMap((f) => f.names.map((n) => [n, f] as const)));

/**
 * Turns W&B's `resource_args.local-container` (a map of `docker run` flags: W&B writes a one-letter key as `-k`,
 * others as `--key`, repeats the flag for a list and passes `true` as a bare flag) into Docker Engine create
 * settings. An unknown key, a refused flag or a malformed value fails with every problem named; nothing is
 * silently dropped.
 *
 * @param resource the `resource` the spec names (`local-container` or `local`), for error paths.
 * @param defaultNetwork the network mode when the args name none.
 */
export function parseContainerResourceArgs(args: Record<string, unknown>, resource: string, defaultNetwork: string): ContainerSettings {
  const out: ContainerSettings = { env: [], envFiles: [], remove: true, labels: {}, config: {}, hostConfig: { NetworkMode: defaultNetwork } };
  const issues: ValidationIssue[] = [];
  const base = `resource_args.${resource}`;
  const seen = new Map<Flag, string>();
  for (const [key, value] of Object.entries(args)) {
    const path = `${base}.${key}`;
    const push = (expected: string, found: string) => issues.push({ path, expected, found, message: `expected ${expected}, found ${found}` });
    const flag = BY_NAME.get(key);
    if (!flag) {
      const reason = REFUSED[key];
      if (reason) {
        push(`no \`${key}\` (this runner refuses it: ${reason})`, `\`${key}\``);
      } else {
        const hint = closest(key, SUPPORTED_RESOURCE_ARGS);
        push(
          `one of the supported docker run flags (${SUPPORTED_RESOURCE_ARGS.join(', ')})${hint ? `; did you mean \`${hint}\`?` : ''}`,
          `the unknown key \`${key}\``,
        );
      }
      continue;
    }
    const other = seen.get(flag);
    if (other !== undefined) {
      push(`one of \`${other}\` and \`${key}\` (they are the same flag)`, 'both');
      continue;
    }
    seen.set(flag, key);
    if (value === null || value === undefined) continue; // an empty template variable: the flag is not given
    if (Array.isArray(value)) {
      if (!flag.list) {
        push(`a single value (\`${key}\` cannot be repeated)`, describeValue(value));
        continue;
      }
      value.forEach((v, i) =>
        flag.apply(v, out, (expected, found) => issues.push({ path: `${path}[${i}]`, expected, found, message: `expected ${expected}, found ${found}` }), key),
      );
      continue;
    }
    if (value && typeof value === 'object' && !flag.dict) {
      push(flag.list ? 'a value or a list of values' : 'a single value', describeValue(value));
      continue;
    }
    flag.apply(value, out, push, key);
  }
  if (out.hostConfig.PortBindings && out.hostConfig.NetworkMode === 'host') {
    issues.push({
      path: `${base}.${seen.has(BY_NAME.get('publish')!) ? seen.get(BY_NAME.get('publish')!) : 'publish'}`,
      expected: 'no published ports with the host network (the container already uses the host ports), or a `network` other than host',
      found: 'published ports',
      message: 'published ports have no effect with network "host": the container listens on the host ports directly; drop `p`/`publish` or set `network`',
    });
  }
  if (issues.length > 0) {
    throw new LaunchValidationError({
      code: 'run.invalid_resource_args',
      stage: 'run',
      category: 'InvalidSpec',
      subject: base,
      hint: `fix the queue's resource_args.${resource} (supported keys: ${SUPPORTED_RESOURCE_ARGS.join(', ')})`,
      issues,
    });
  }
  return out;
}

/**
 * Parses a Docker env file (`docker run --env-file`): `NAME=value` lines, `#` comments and blank lines
 * skipped. A bare `NAME` (copy from the agent's environment) is refused, as for `-e NAME`.
 */
export function parseEnvFile(text: string, path: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const issues: ValidationIssue[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    const name = eq < 0 ? line.trim() : line.slice(0, eq);
    const where = `${path}:${i + 1}`;
    if (eq < 0) {
      issues.push({
        path: where,
        expected: 'NAME=value (copying a variable from the agent environment is refused)',
        found: `a bare name ${JSON.stringify(name.slice(0, 60))}`,
        message: `expected NAME=value, found a bare name`,
      });
    } else if (!ENV_NAME.test(name) || line.includes('\0')) {
      issues.push({
        path: where,
        expected: 'NAME=value with a valid name',
        found: `a variable named ${JSON.stringify(name.slice(0, 60))}`,
        message: 'expected NAME=value with a valid name',
      });
    } else out.push([name, line.slice(eq + 1)]);
  });
  if (issues.length > 0) {
    throw new LaunchValidationError({ code: 'run.invalid_env_file', stage: 'run', category: 'InvalidSpec', subject: `env file ${path}`, issues });
  }
  return out;
}
