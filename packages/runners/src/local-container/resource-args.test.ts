import { describe, expect, it } from 'vitest';
import { LaunchValidationError } from '@launch/core';
import { parseContainerResourceArgs, parseEnvFile, SUPPORTED_RESOURCE_ARGS } from './resource-args.js';
import { parseBytes, parseGpus, parsePort } from './units.js';

const parse = (args: Record<string, unknown>, network = 'host') => parseContainerResourceArgs(args, 'local-container', network);

function issuesOf(args: Record<string, unknown>): LaunchValidationError {
  try {
    parse(args);
  } catch (error) {
    expect(error).toBeInstanceOf(LaunchValidationError);
    return error as LaunchValidationError;
  }
  throw new Error('accepted');
}

describe('resource_args.local-container → container settings', () => {
  it('maps the docker run flags W&B passes to the engine fields', () => {
    const s = parse({
      e: ['A=1', 'B=x=y'],
      'env-file': '/etc/job.env',
      v: ['/data:/data:ro', 'cache:/cache', '/scratch'],
      gpus: 'all',
      net: 'none',
      rm: false,
      u: '1000:1000',
      'shm-size': '1g',
      m: '512m',
      'memory-swap': -1,
      cpus: 1.5,
      'cpuset-cpus': '0-1',
      'pids-limit': 100,
      ulimit: ['nofile=1024:2048', 'nproc=64'],
      w: '/work',
      platform: 'linux/amd64',
      'add-host': 'host.docker.internal:host-gateway',
      label: { team: 'ml' },
      init: true,
      'read-only': 'true',
      tmpfs: '/tmp:size=64m',
    });
    expect(s.env).toEqual([
      ['A', '1'],
      ['B', 'x=y'],
    ]);
    expect(s.envFiles).toEqual(['/etc/job.env']);
    expect(s.remove).toBe(false);
    expect(s.platform).toBe('linux/amd64');
    expect(s.labels).toEqual({ team: 'ml' });
    expect(s.config).toEqual({ User: '1000:1000', WorkingDir: '/work', Volumes: { '/scratch': {} } });
    expect(s.hostConfig).toEqual({
      NetworkMode: 'none',
      Binds: ['/data:/data:ro', 'cache:/cache'],
      DeviceRequests: [{ Driver: '', Count: -1, DeviceIDs: null, Capabilities: [['gpu']] }],
      ShmSize: 1024 ** 3,
      Memory: 512 * 1024 ** 2,
      MemorySwap: -1,
      NanoCpus: 1_500_000_000,
      CpusetCpus: '0-1',
      PidsLimit: 100,
      Ulimits: [
        { Name: 'nofile', Soft: 1024, Hard: 2048 },
        { Name: 'nproc', Soft: 64, Hard: 64 },
      ],
      ExtraHosts: ['host.docker.internal:host-gateway'],
      Init: true,
      ReadonlyRootfs: true,
      Tmpfs: { '/tmp': 'size=64m' },
    });
  });

  it('defaults: the runner network, rm on, nothing else', () => {
    expect(parse({}, 'host')).toEqual({ env: [], envFiles: [], remove: true, labels: {}, config: {}, hostConfig: { NetworkMode: 'host' } });
  });

  it('takes env as a dict and ports when the network is not host', () => {
    const s = parse({ env: { X: 'y', N: 3 }, network: 'bridge', p: ['127.0.0.1:8080:80', '9000/udp'] });
    expect(s.env).toEqual([
      ['X', 'y'],
      ['N', '3'],
    ]);
    expect(s.config.ExposedPorts).toEqual({ '80/tcp': {}, '9000/udp': {} });
    expect(s.hostConfig.PortBindings).toEqual({ '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '8080' }], '9000/udp': [{ HostIp: '', HostPort: '' }] });
  });

  it('refuses an unknown key, naming it, suggesting the closest and listing the supported ones', () => {
    const error = issuesOf({ memroy: '1g' });
    expect(error.code).toBe('run.invalid_resource_args');
    expect(error.stage).toBe('run');
    expect(error.category).toBe('InvalidSpec');
    expect(error.issues[0]!.path).toBe('resource_args.local-container.memroy');
    expect(error.message).toContain('did you mean `memory`');
    for (const key of SUPPORTED_RESOURCE_ARGS) expect(error.message).toContain(key);
  });

  it('refuses flags it cannot honour, each with its reason', () => {
    const error = issuesOf({ name: 'x', privileged: true, restart: 'always', entrypoint: 'sh' });
    const byPath = new Map(error.issues.map((i) => [i.path, i.expected]));
    expect(byPath.get('resource_args.local-container.name')).toContain('queue item id');
    expect(byPath.get('resource_args.local-container.privileged')).toContain('control over the agent host');
    expect(byPath.get('resource_args.local-container.restart')).toContain('restart policy');
    expect(byPath.get('resource_args.local-container.entrypoint')).toContain('overrides.entry_point');
  });

  it('refuses published ports with the host network (they would be silently discarded by the engine)', () => {
    const error = issuesOf({ p: '8080:80' });
    expect(error.message).toContain('network "host"');
  });

  it('names every malformed value, never echoing an env value', () => {
    const secret = 'hunter2-secret-value';
    const error = issuesOf({
      e: ['NAME_ONLY', `=${secret}`],
      env: { OK: { nested: secret } },
      m: 'lots',
      v: 'relative/path:/data',
      gpus: 'some',
      cpus: 0,
      rm: 'yes',
      w: 'relative',
    });
    expect(error.issues.map((i) => i.path).sort()).toEqual(
      [
        'resource_args.local-container.e[0]',
        'resource_args.local-container.e[1]',
        'resource_args.local-container.env',
        'resource_args.local-container.m',
        'resource_args.local-container.v',
        'resource_args.local-container.gpus',
        'resource_args.local-container.cpus',
        'resource_args.local-container.rm',
        'resource_args.local-container.w',
      ].sort(),
    );
    expect(error.message).not.toContain(secret);
    expect(JSON.stringify(error.issues)).not.toContain(secret);
  });

  it('refuses one flag given under two names, and a list where one value is allowed', () => {
    const error = issuesOf({ m: '1g', memory: '2g', network: ['host', 'none'] });
    expect(error.issues.map((i) => i.path).sort()).toEqual(['resource_args.local-container.memory', 'resource_args.local-container.network']);
  });

  it('skips a flag whose value is null (an empty template variable)', () => {
    expect(parse({ gpus: null }).hostConfig.DeviceRequests).toBeUndefined();
  });
});

describe('docker run value syntaxes', () => {
  it('sizes as docker parses them (binary units)', () => {
    expect(parseBytes('1024')).toBe(1024);
    expect(parseBytes('1k')).toBe(1024);
    expect(parseBytes('1.5GiB')).toBe(1.5 * 1024 ** 3);
    expect(parseBytes('2gb')).toBe(2 * 1024 ** 3);
    expect(parseBytes('-1')).toBeUndefined();
    expect(parseBytes('1x')).toBeUndefined();
  });

  it('gpus: all, a count, device ids', () => {
    expect(parseGpus(2)?.Count).toBe(2);
    expect(parseGpus('"device=0,2"')).toMatchObject({ Count: 0, DeviceIDs: ['0', '2'] });
    expect(parseGpus('count=2,capabilities=compute,utility')).toMatchObject({ Count: 2, Capabilities: [['compute', 'utility']] });
    expect(parseGpus('device=0,count=1')).toBeUndefined();
    expect(parseGpus('0')).toBeUndefined();
  });

  it('ports: single ports with optional host ip and protocol', () => {
    expect(parsePort('80')).toEqual({ containerPort: '80/tcp', hostIp: '', hostPort: '' });
    expect(parsePort('8000-8010:80')).toBeUndefined();
    expect(parsePort('70000')).toBeUndefined();
  });
});

describe('env files', () => {
  it('reads NAME=value lines, skips comments and blanks', () => {
    expect(parseEnvFile('# c\n\nA=1\n  B=two words\nC=\n', '/f')).toEqual([
      ['A', '1'],
      ['B', 'two words'],
      ['C', ''],
    ]);
  });

  it('refuses a bare name (a copy from the agent environment), naming the line', () => {
    expect(() => parseEnvFile('A=1\nSECRET\n', '/etc/job.env')).toThrow('/etc/job.env:2');
  });
});
