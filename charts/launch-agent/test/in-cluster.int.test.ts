/**
 * `helm install` as far as it can go here: the chart rendered by real Helm from a W&B-style values file, every
 * object it renders applied to the Kubernetes test server (validated there against the Kubernetes schemas), and the
 * built agent started as the kubelet would start the Deployment's pod:
 *
 * - the container's args and env, with configMapKeyRef, secretKeyRef and fieldRef resolved from the applied objects,
 *   plus the image's ENTRYPOINT and ENV (docker/agent/Dockerfile) and the service env the kubelet adds
 *   (KUBERNETES_SERVICE_HOST/PORT);
 * - its volumes made from the applied objects (emptyDir, configMap, secret) and mounted at the container's mount
 *   paths, and the service account's token volume (token, ca.crt, namespace) at
 *   /var/run/secrets/kubernetes.io/serviceaccount, in a private mount namespace (`unshare`), so the binary finds
 *   everything at the paths client-node's in-cluster loader and W&B's config path hard-code;
 * - the pod's security context: uid/gid 1000, no new privileges, read-only root filesystem.
 *
 * The test server speaks TLS with the ca.crt the pod gets and authorizes with RBAC: the token identifies the chart's
 * ServiceAccount, so the agent can do exactly what the applied Roles grant. The agent then runs a W&B job in a target
 * namespace, and its health endpoints answer on the port the probes name.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { promisify } from 'node:util';
import { createWandbTestServer, serviceAvailable, startKubeTestServer, waitFor, type KubeTestServer, type WandbTestServer } from '@launch/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { find, objectProblems, one, repoRoot, startHelm, type Helm, type KubeObject } from './helm.js';

const RELEASE = 'launch';
const AGENT_NS = 'wandb';
const TARGET = 'ml';
const QUEUE = 'gpu';
const SA_MOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';
const cli = join(repoRoot, 'examples/agent/dist/cli.js');
const dockerfile = join(repoRoot, 'docker/agent/Dockerfile');
const execFileAsync = promisify(execFile);

/** unshare + mount need root (CAP_SYS_ADMIN); check once that a private mount namespace can be made here. */
function mountNamespaces(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync(
      'unshare',
      ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs tmpfs /tmp && setpriv --reuid=1000 --regid=1000 --clear-groups true'],
      {
        stdio: 'ignore',
      },
    );
    return true;
  } catch {
    return false;
  }
}

const enabled =
  serviceAvailable('the built agent (run `npx -y pnpm@10 build` first)', existsSync(cli)) &&
  serviceAvailable('private mount namespaces (root with CAP_SYS_ADMIN, util-linux unshare and setpriv)', mountNamespaces());

let helm: Helm;
let kube: KubeTestServer;
let wandb: WandbTestServer;
let work: string;
let agent: ChildProcess | undefined;
let agentOut = '';
let agentExit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

interface Reply {
  status: number;
  body: any;
}

/** A request to the test server over TLS, trusting only its certificate (as the pod's ca.crt does). */
function kubeCall(method: string, path: string, token: string, body?: unknown): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, kube.url);
    const req = httpsRequest(
      url,
      { method, ca: kube.caCert, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            /* plain text */
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** The collection path of a rendered object, for the kinds the chart renders. */
function collectionPath(obj: KubeObject): string {
  const plurals: Record<string, string> = {
    ConfigMap: 'configmaps',
    Secret: 'secrets',
    ServiceAccount: 'serviceaccounts',
    Service: 'services',
    Deployment: 'deployments',
    PodDisruptionBudget: 'poddisruptionbudgets',
    Role: 'roles',
    RoleBinding: 'rolebindings',
  };
  const plural = plurals[obj.kind];
  if (!plural) throw new Error(`the chart rendered a ${obj.apiVersion} ${obj.kind}, which this test does not apply`);
  const base = obj.apiVersion === 'v1' ? '/api/v1' : `/apis/${obj.apiVersion}`;
  return `${base}/namespaces/${obj.metadata.namespace}/${plural}`;
}

/** The image's ENTRYPOINT and ENV, as `docker build` records them (single-line JSON ENTRYPOINT, `ENV k=v \` lists). */
function imageConfig(): { entrypoint: string[]; env: Record<string, string> } {
  const text = readFileSync(dockerfile, 'utf8').replace(/\\\n/g, ' ');
  const final = text.split(/^FROM /m).pop()!;
  const entry = /^ENTRYPOINT (\[.*\])$/m.exec(final);
  if (!entry) throw new Error(`${dockerfile}: no JSON ENTRYPOINT in the final stage`);
  const env: Record<string, string> = {};
  for (const line of final.match(/^ENV .*$/gm) ?? []) {
    for (const m of line.slice(4).matchAll(/([A-Za-z_][A-Za-z0-9_]*)=(\S+)/g)) env[m[1]!] = m[2]!;
  }
  return { entrypoint: JSON.parse(entry[1]!) as string[], env };
}

interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
}

/**
 * The pod's volumes as the kubelet makes them, from the objects in the server: emptyDirs writable by fsGroup,
 * configMap and secret volumes as files (items, modes), and the projected service account token.
 */
async function podMounts(spec: any, container: any, saToken: string): Promise<Mount[]> {
  const fsGroup = spec.securityContext?.fsGroup as number | undefined;
  const volumeDirs = new Map<string, string>();
  for (const v of spec.volumes as any[]) {
    const dir = join(work, 'volumes', v.name);
    mkdirSync(dir, { recursive: true });
    if (v.emptyDir) {
      chmodSync(dir, 0o777);
    } else if (v.configMap || v.secret) {
      const ref = v.configMap ? { plural: 'configmaps', name: v.configMap.name } : { plural: 'secrets', name: v.secret.secretName };
      const got = await kubeCall('GET', `/api/v1/namespaces/${AGENT_NS}/${ref.plural}/${ref.name}`, kube.token);
      expect(got.status, `${ref.plural}/${ref.name} for volume ${v.name}`).toBe(200);
      const data: Record<string, string> = v.configMap
        ? (got.body.data ?? {})
        : Object.fromEntries(Object.entries((got.body.data ?? {}) as Record<string, string>).map(([k, b]) => [k, Buffer.from(b, 'base64').toString()]));
      const source = v.configMap ?? v.secret;
      const items: { key: string; path: string }[] = source.items ?? Object.keys(data).map((key) => ({ key, path: key }));
      for (const item of items) {
        if (!(item.key in data)) throw new Error(`volume ${v.name}: key ${item.key} is not in ${ref.plural}/${ref.name}`);
        const file = join(dir, item.path);
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, data[item.key]!, { mode: source.defaultMode ?? 0o644 });
        if (fsGroup !== undefined) chownSync(file, 0, fsGroup);
      }
      chmodSync(dir, 0o755);
    } else {
      throw new Error(`volume ${v.name}: only emptyDir, configMap and secret volumes are made by this test, found ${Object.keys(v).join(', ')}`);
    }
    if (fsGroup !== undefined) chownSync(dir, 0, fsGroup);
    volumeDirs.set(v.name, dir);
  }
  const mounts: Mount[] = (container.volumeMounts as any[]).map((m) => {
    const dir = volumeDirs.get(m.name);
    if (!dir) throw new Error(`volumeMount ${m.mountPath}: no volume named ${m.name}`);
    return { source: m.subPath ? join(dir, m.subPath) : dir, target: m.mountPath, readOnly: m.readOnly === true };
  });
  if (spec.automountServiceAccountToken !== false) {
    const sa = join(work, 'volumes', 'kube-api-access');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), saToken, { mode: 0o644 });
    writeFileSync(join(sa, 'ca.crt'), kube.caCert!, { mode: 0o644 });
    writeFileSync(join(sa, 'namespace'), AGENT_NS, { mode: 0o644 });
    mounts.push({ source: sa, target: SA_MOUNT, readOnly: true });
  }
  return mounts;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * A shell script that, in a private mount namespace, mounts the pod's volumes, makes the root filesystem read-only and
 * execs the command as the pod's user. A mount point the host lacks is made as the image would have it: under a
 * volume already mounted it is created there (as the runtime does), elsewhere a tmpfs covers its deepest existing
 * ancestor first (so nothing is created on this machine's own filesystem).
 */
function podScript(mounts: Mount[], user: { uid: number; gid: number }, readOnlyRoot: boolean, argv: string[]): string {
  const lines = ['set -e'];
  const mounted: string[] = [];
  const covered = new Set<string>();
  // Parents before children; a mount covering this test's staging directory (the pod's /tmp) last, once every volume
  // made there is mounted where it belongs.
  const covers = (m: Mount) => work === m.target || work.startsWith(`${m.target}/`);
  const depth = (m: Mount) => m.target.split('/').length;
  const ordered = [...mounts].sort((a, b) => Number(covers(a)) - Number(covers(b)) || depth(a) - depth(b));
  // What the agent process needs of this machine (the checkout with its dist and node_modules, node itself) stays
  // visible where it is when a pod mount covers it (the pod's /tmp over a checkout in /tmp): bound aside on a
  // scratch tmpfs first, then back at its own path on top of the covering mount.
  const keep = [repoRoot, dirname(process.execPath)];
  const under = (path: string, target: string) => path === target || path.startsWith(`${target}/`);
  const scratch = ['/mnt', '/media', '/srv', '/opt'].find(
    (d) => existsSync(d) && !keep.some((k) => under(k, d) || under(d, k)) && !mounts.some((m) => under(m.target, d) || under(d, m.target)),
  );
  let stashed = 0;
  /** Binds aside what a mount at `target` would hide; returns the lines that put it back on top of that mount. */
  const preserve = (target: string): string[] => {
    const hidden = keep.filter((k) => under(k, target));
    if (hidden.length === 0) return [];
    if (!scratch) throw new Error(`mount ${target} would hide ${hidden.join(', ')} and no scratch directory is free`);
    if (stashed === 0) lines.push(`mount -t tmpfs -o mode=700 keep ${q(scratch)}`);
    return hidden.map((k) => {
      const stash = `${scratch}/${stashed++}`;
      lines.push(`mkdir -p ${q(stash)} && mount --bind ${q(k)} ${q(stash)}`);
      return `mkdir -p ${q(k)} && mount --bind ${q(stash)} ${q(k)}`;
    });
  };
  for (const m of ordered) {
    if (mounts.some((o) => covers(o) && o !== m && m.target.startsWith(`${o.target}/`))) {
      throw new Error(`mount ${m.target} is under ${work}'s covering mount: not supported by this test`);
    }
    const isFile = statSync(m.source).isFile();
    const underMount = mounted.some((p) => m.target.startsWith(`${p}/`));
    if (!underMount && !existsSync(m.target)) {
      let ancestor = dirname(m.target);
      while (!existsSync(ancestor)) ancestor = dirname(ancestor);
      if (ancestor === '/') throw new Error(`cannot make mount point ${m.target}: its only existing ancestor is /`);
      if (!covered.has(ancestor)) {
        const back = preserve(ancestor);
        lines.push(`mount -t tmpfs -o mode=755 image-dirs ${q(ancestor)}`, ...back);
        covered.add(ancestor);
        mounted.push(ancestor);
      }
    }
    lines.push(isFile ? `mkdir -p ${q(posix.dirname(m.target))} && touch ${q(m.target)}` : `mkdir -p ${q(m.target)}`);
    const back = preserve(m.target);
    lines.push(`mount --bind ${q(m.source)} ${q(m.target)}`);
    if (m.readOnly) lines.push(`mount -o remount,bind,ro ${q(m.target)}`);
    lines.push(...back);
    mounted.push(m.target);
  }
  if (readOnlyRoot) lines.push('mount -o remount,bind,ro /');
  lines.push(`exec setpriv --reuid=${user.uid} --regid=${user.gid} --clear-groups --no-new-privs -- ${argv.map(q).join(' ')}`);
  return lines.join('\n');
}

async function metric(port: number, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = (m[2] ?? '').split(',');
    if (want.every((w) => have.includes(w))) return Number(m[3]);
  }
  return undefined;
}

let rendered: KubeObject[] = [];
let healthPort = 0;
let deployment: KubeObject;
let saUser = '';
let saToken = '';

beforeAll(async () => {
  if (!enabled) return;
  work = mkdtempSync(join(tmpdir(), 'launch-in-cluster-'));
  chmodSync(work, 0o755);
  helm = await startHelm();
  wandb = await createWandbTestServer({ queues: [{ entity: 'tester', name: QUEUE }] });
  kube = await startKubeTestServer({ tls: true, authorization: 'RBAC', namespaces: [AGENT_NS, TARGET, 'default'], kubelet: { stepDelayMs: 5 } });
  healthPort = await freePort();

  // A values file as W&B users write one for W&B's chart (the seed README's keys), pointing at the W&B test server.
  const values = join(work, 'values.yaml');
  writeFileSync(
    values,
    [
      'agent:',
      `  apiKey: ${JSON.stringify(wandb.apiKey)}`,
      '  useExternalWandbSecret: false',
      '  image: wandb/launch-agent:latest',
      '  imagePullPolicy: Always',
      '  resources:',
      '    limits: { cpu: 1000m, memory: 1Gi }',
      `namespace: ${AGENT_NS}`,
      'additionalTargetNamespaces:',
      `  - ${TARGET}`,
      `baseUrl: ${JSON.stringify(wandb.url)}`,
      'launchConfig: |',
      '  entity: tester',
      `  queues: [${QUEUE}]`,
      '  max_jobs: 2',
      '  poll_interval: 0.2',
      'volcano: true',
      'gitCreds: |',
      '',
      'serviceAccount:',
      '  annotations:',
      '    iam.gke.io/gcp-service-account:',
      '',
    ].join('\n'),
  );
  rendered = await helm.template({ release: RELEASE, namespace: AGENT_NS, valuesFiles: [values], setJson: { 'health.port': healthPort } });
  deployment = one(rendered, 'Deployment');
}, 180_000);

afterAll(async () => {
  if (agent && agent.exitCode === null && agent.signalCode === null) {
    agent.kill('SIGKILL');
    await agentExit;
  }
  await kube?.close();
  await wandb?.close();
  helm?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.runIf(enabled)('the chart installed on the Kubernetes test server', () => {
  it('applies every rendered object, each valid, in a namespace the release owns', async () => {
    expect(rendered.length).toBeGreaterThan(0);
    for (const kind of ['ServiceAccount', 'ConfigMap', 'Deployment', 'Role', 'RoleBinding', 'Secret'])
      expect(find(rendered, kind).length, kind).toBeGreaterThan(0);
    for (const obj of rendered) {
      expect(await objectProblems(obj)).toEqual([]);
      expect([AGENT_NS, TARGET]).toContain(obj.metadata.namespace);
      const res = await kubeCall('POST', collectionPath(obj), kube.token, obj);
      expect(res.status, `${obj.kind} ${obj.metadata.namespace}/${obj.metadata.name}: ${JSON.stringify(res.body)}`).toBe(201);
    }
    // The server holds what was applied: the API key secret in each target namespace, the Roles there.
    for (const ns of [AGENT_NS, TARGET]) {
      expect(kube.getObject(`/api/v1/namespaces/${ns}/secrets/wandb-api-key-${RELEASE}`), ns).toBeDefined();
      expect(kube.listObjects(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`)).toHaveLength(1);
    }
  });

  it('refuses the service account what its Roles do not grant, with a real 403', async () => {
    const spec = deployment.spec.template.spec;
    saToken = kube.serviceAccountToken(AGENT_NS, spec.serviceAccountName);
    saUser = `system:serviceaccount:${AGENT_NS}:${spec.serviceAccountName}`;
    // Not a target namespace: nothing there.
    const other = await kubeCall('GET', '/api/v1/namespaces/default/secrets/anything', saToken);
    expect(other.status).toBe(403);
    expect(other.body).toMatchObject({ kind: 'Status', reason: 'Forbidden', code: 403 });
    expect(other.body.message).toBe(
      `secrets "anything" is forbidden: User "${saUser}" cannot get resource "secrets" in API group "" in the namespace "default"`,
    );
    // A target namespace: the Role grants get on secrets, not list.
    const get = await kubeCall('GET', `/api/v1/namespaces/${TARGET}/secrets/wandb-api-key-${RELEASE}`, saToken);
    expect(get.status).toBe(200);
    const list = await kubeCall('GET', `/api/v1/namespaces/${TARGET}/secrets`, saToken);
    expect(list.status).toBe(403);
    // Nothing cluster-wide.
    const jobs = await kubeCall('GET', '/apis/batch/v1/jobs', saToken);
    expect(jobs.status).toBe(403);
    expect(jobs.body.message).toContain('at the cluster scope');
    // A token of no account is not a user at all.
    expect((await kubeCall('GET', `/api/v1/namespaces/${TARGET}/pods`, 'not-a-token')).status).toBe(401);
  });

  it('runs the agent as the Deployment’s pod: ready on the probes’ port, a W&B job run in a target namespace, counted in /metrics', async () => {
    expect(saToken).not.toBe('');
    // The Deployment as the server holds it, as the kubelet would get it.
    const stored = await kubeCall('GET', `/apis/apps/v1/namespaces/${AGENT_NS}/deployments/${deployment.metadata.name}`, kube.token);
    expect(stored.status).toBe(200);
    const spec = stored.body.spec.template.spec;
    const [container] = spec.containers as any[];
    expect(container.command).toBeUndefined();
    const image = imageConfig();
    expect(image.entrypoint).toEqual(['launch-agent']);

    // The environment: the image's ENV, the kubelet's service variables, then the container's env, references resolved.
    const env: Record<string, string> = {
      PATH: `${dirname(process.execPath)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
      HOSTNAME: `${deployment.metadata.name}-5d8f7c9b4-x2x9q`,
      ...image.env,
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
      KUBERNETES_SERVICE_PORT: new URL(kube.url).port,
    };
    for (const e of container.env as any[]) {
      if (e.value !== undefined) env[e.name] = e.value;
      else if (e.valueFrom?.configMapKeyRef) {
        const ref = e.valueFrom.configMapKeyRef;
        const cm = await kubeCall('GET', `/api/v1/namespaces/${AGENT_NS}/configmaps/${ref.name}`, kube.token);
        expect(cm.body?.data?.[ref.key], `${e.name} from configmap ${ref.name}`).toBeTypeOf('string');
        env[e.name] = cm.body.data[ref.key];
      } else if (e.valueFrom?.secretKeyRef) {
        const ref = e.valueFrom.secretKeyRef;
        const s = await kubeCall('GET', `/api/v1/namespaces/${AGENT_NS}/secrets/${ref.name}`, kube.token);
        expect(s.body?.data?.[ref.key], `${e.name} from secret ${ref.name}`).toBeTypeOf('string');
        env[e.name] = Buffer.from(s.body.data[ref.key], 'base64').toString();
      } else if (e.valueFrom?.fieldRef?.fieldPath === 'spec.serviceAccountName') env[e.name] = spec.serviceAccountName;
      else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[e.name] = AGENT_NS;
      else throw new Error(`env ${e.name}: ${JSON.stringify(e.valueFrom)} is not resolved by this test`);
    }
    expect(env.WANDB_API_KEY).toBe(wandb.apiKey);
    expect(env.WANDB_BASE_URL).toBe(wandb.url);
    expect(env.HOME).toBe('/home/launch_agent');

    const mounts = await podMounts(spec, container, saToken);
    // W&B's config path: the chart mounts the ConfigMap where the agent looks by default.
    const configMount = mounts.find((m) => existsSync(join(m.source, 'launch-config.yaml')));
    expect(configMount?.target).toBe('/home/launch_agent/.config/wandb');

    const ctx = container.securityContext;
    expect(ctx).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    const argv = [process.execPath, cli, ...((container.args as string[] | undefined) ?? [])];
    const script = podScript(mounts, { uid: ctx.runAsUser, gid: ctx.runAsGroup }, ctx.readOnlyRootFilesystem, argv);
    const from = kube.requests.length;
    agent = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    agent.stdout!.setEncoding('utf8').on('data', (d: string) => (agentOut += d));
    agent.stderr!.setEncoding('utf8').on('data', (d: string) => (agentOut += d));
    agentExit = new Promise((resolve) => agent!.on('close', (code, signal) => resolve({ code, signal })));
    void agentExit.then((r) => (agentOut += `\n[agent exited: ${JSON.stringify(r)}]`));

    // The probes' port: the container port they name.
    const probePort = (container.ports as any[]).find((p) => p.name === container.readinessProbe.httpGet.port)?.containerPort as number;
    expect(probePort).toBe(healthPort);
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'health' });
    const ready = await waitFor(
      async () => {
        // An exited agent ends the wait at once (its output is in the failure below).
        if (agent!.exitCode !== null) return { status: `exited with ${agent!.exitCode}: ${agentOut}` };
        const r = await fetch(`http://127.0.0.1:${probePort}${container.readinessProbe.httpGet.path}`, { signal: AbortSignal.timeout(5000) }).catch(
          () => undefined,
        );
        return r?.status === 200 ? ((await r.json()) as { status: string }) : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100, what: `/readyz to answer 200 (agent output:\n${agentOut})` },
    );
    expect(ready.status).toBe('ready');
    expect((await fetch(`http://127.0.0.1:${probePort}/healthz`)).status).toBe(200);
    const registered = await wandb.waitFor(() => [...wandb.state.agents.values()][0], 20_000, 'the agent to register with W&B');
    expect(registered.runQueues.length).toBeGreaterThan(0);

    // A job for the target namespace, pushed to the W&B queue from outside the cluster.
    const specFile = join(work, 'job.json');
    writeFileSync(
      specFile,
      JSON.stringify({
        entity: 'tester',
        project: 'proj',
        resource: 'kubernetes',
        docker: { docker_image: 'ghcr.io/acme/train:1' },
        overrides: { entry_point: ['sh', '-c', 'echo trained'] },
        resource_args: { kubernetes: { namespace: TARGET } },
      }),
    );
    const clientConfig = join(work, 'client-config.yaml');
    writeFileSync(clientConfig, `entity: tester\nqueues: [${QUEUE}]\n`);
    // Asynchronously: the W&B test server answering it runs in this process.
    const enq = await execFileAsync(process.execPath, [cli, 'enqueue', '-c', clientConfig, '-q', QUEUE, '--spec', specFile], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: join(work, 'client-home'),
        WANDB_API_KEY: wandb.apiKey,
        WANDB_BASE_URL: wandb.url,
        NO_COLOR: '1',
      },
      encoding: 'utf8',
      timeout: 60_000,
    });
    const itemId = enq.stdout.trim();
    expect(wandb.state.items.get(itemId)).toBeDefined();

    // The job ran and finished, and /metrics counts it.
    await waitFor(async () => (await metric(probePort, 'launch_jobs_total', { queue: QUEUE, state: 'finished' })) === 1, {
      timeoutMs: 60_000,
      intervalMs: 100,
      what: `launch_jobs_total{queue="${QUEUE}",state="finished"} to be 1 (agent output:\n${agentOut})`,
    });
    expect(await metric(probePort, 'launch_jobs_claimed_total', { queue: QUEUE })).toBe(1);
    expect(await metric(probePort, 'launch_jobs_total', { queue: QUEUE, state: 'failed' })).toBeUndefined();
    expect(await metric(probePort, 'launch_agent_ready', {})).toBe(1);

    // Every API request the agent made came with the service account's token, over TLS, and the Job was created in
    // the target namespace by it; all it was refused are cluster-wide lists (answered 403 by RBAC, not by a fault).
    const made = kube.requests.slice(from);
    expect(made.length).toBeGreaterThan(0);
    expect(made.every((r) => r.user === saUser)).toBe(true);
    const created = made.filter((r) => r.method === 'POST' && r.path === `/apis/batch/v1/namespaces/${TARGET}/jobs`);
    expect(created.map((r) => r.status)).toEqual([201]);
    const refused = made.filter((r) => r.status >= 400);
    for (const r of refused) {
      expect(r.status, `${r.method} ${r.path}`).toBe(403);
      expect(r.path, `${r.method} ${r.path}`).not.toContain('/namespaces/');
    }
    // The Job's pods read the key from the release's secret in that namespace, which the chart made there.
    const jobs = kube.listObjects(`/apis/batch/v1/namespaces/${TARGET}/jobs`) as KubeObject[];
    expect(jobs).toHaveLength(1);
    const key = jobs[0]!.spec.template.spec.containers[0].env.find((e: { name: string }) => e.name === 'WANDB_API_KEY');
    expect(key.valueFrom.secretKeyRef).toEqual({ name: `wandb-api-key-${RELEASE}`, key: 'password' });

    // SIGTERM, as pod deletion sends it: a clean stop, not ready any more, and the key never printed.
    agent.kill('SIGTERM');
    const exit = await agentExit;
    expect(exit, agentOut).toEqual({ code: 0, signal: null });
    expect(agentOut).not.toContain(wandb.apiKey);
    expect(registered.agentStatus).toBe('KILLED');
  }, 180_000);
});
