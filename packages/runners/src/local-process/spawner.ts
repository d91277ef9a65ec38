import { Worker } from 'node:worker_threads';

/**
 * The worker's program (plain Node, CommonJS, no dependencies). It spawns on request, reads the children's
 * stdout/stderr and posts every event back in order: `started` (the pid, or the error `spawn` threw), then
 * `spawn` / `error` / `data` / `exit` / `close` as child_process emits them. Forking and waiting for the
 * child's exec happen here, not on the agent's event loop.
 */
const WORKER = `
const { spawn } = require('node:child_process');
const { parentPort } = require('node:worker_threads');
const children = new Map();
const errorOf = (e) => ({ message: String(e && e.message), code: e && e.code, errno: e && e.errno, syscall: e && e.syscall, path: e && e.path });
parentPort.on('message', (m) => {
  if (m.t !== 'spawn') {
    const child = children.get(m.id);
    if (!child) return;
    if (m.t === 'pause') { child.stdout && child.stdout.pause(); child.stderr && child.stderr.pause(); }
    else if (m.t === 'resume') { child.stdout && child.stdout.resume(); child.stderr && child.stderr.resume(); }
    else if (m.t === 'destroy') { child.stdout && child.stdout.destroy(); child.stderr && child.stderr.destroy(); }
    return;
  }
  const id = m.id;
  let child;
  try {
    child = spawn(m.command, m.args, { cwd: m.cwd, env: m.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    parentPort.postMessage({ t: 'started', id, thrown: errorOf(e) });
    return;
  }
  children.set(id, child);
  parentPort.postMessage({ t: 'started', id, pid: child.pid });
  const data = (stream) => (chunk) => {
    const copy = new Uint8Array(chunk);
    parentPort.postMessage({ t: 'data', id, stream, chunk: copy }, [copy.buffer]);
  };
  if (child.stdout) child.stdout.on('data', data('stdout'));
  if (child.stderr) child.stderr.on('data', data('stderr'));
  child.once('spawn', () => parentPort.postMessage({ t: 'spawn', id }));
  child.on('error', (e) => parentPort.postMessage({ t: 'error', id, error: errorOf(e) }));
  child.once('exit', (code, signal) => parentPort.postMessage({ t: 'exit', id, code, signal }));
  child.once('close', (code, signal) => {
    children.delete(id);
    parentPort.postMessage({ t: 'close', id, code, signal });
  });
});
`;

/** What a spawned process reports, in child_process's order: `onSpawn` or `onError`, data, `onExit`, `onClose`. */
export interface SpawnHandlers {
  onSpawn(): void;
  onError(error: NodeJS.ErrnoException): void;
  onData(stream: 'stdout' | 'stderr', chunk: Buffer): void;
  onExit(code: number | null, signal: NodeJS.Signals | null): void;
  onClose(code: number | null, signal: NodeJS.Signals | null): void;
}

export interface SpawnRequest {
  command: string;
  args: string[];
  cwd?: string;
  env: Record<string, string>;
}

/** A process started by the spawner. Signals go to its group directly (`process.kill(-pid)`), not through here. */
export interface SpawnedProcess {
  /**
   * Resolves with the pid once the process has one, or with undefined when the spawn failed asynchronously
   * (a missing command: the error then comes through `onError`, followed by `onClose`); rejects when
   * `spawn` itself threw (bad arguments). Handlers may be called before it settles.
   */
  readonly started: Promise<number | undefined>;
  /** The pid, once `started` resolved with one. */
  readonly pid: number | undefined;
  /** Stops reading its output (back-pressure from the log file), and starts again. */
  pause(): void;
  resume(): void;
  /** Stops reading its output for good (a daemonised grandchild holds the pipes open). */
  destroyStdio(): void;
}

export interface Spawner {
  /** Spawns `command` in its own process group (detached), stdin ignored, stdout/stderr piped to `handlers`. */
  spawn(request: SpawnRequest, handlers: SpawnHandlers): SpawnedProcess;
  /** Ends the worker thread (its children are not touched: they are the runner's to cancel). */
  close(): Promise<void>;
}

type FromWorker =
  | { t: 'started'; id: number; pid?: number; thrown?: ErrorData }
  | { t: 'spawn'; id: number }
  | { t: 'error'; id: number; error: ErrorData }
  | { t: 'data'; id: number; stream: 'stdout' | 'stderr'; chunk: Uint8Array }
  | { t: 'exit' | 'close'; id: number; code: number | null; signal: NodeJS.Signals | null };

interface ErrorData {
  message: string;
  code?: string;
  errno?: number;
  syscall?: string;
  path?: string;
}

function toError(data: ErrorData): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(data.message);
  if (data.code !== undefined) error.code = data.code;
  if (data.errno !== undefined) error.errno = data.errno;
  if (data.syscall !== undefined) error.syscall = data.syscall;
  if (data.path !== undefined) error.path = data.path;
  return error;
}

interface Pending {
  handlers: SpawnHandlers;
  setPid(pid: number | undefined): void;
  started?: { resolve(pid: number | undefined): void; reject(e: Error): void };
}

/**
 * Spawns processes from a worker thread, so that `fork()` and the wait for the child's `exec()` (which
 * child_process does synchronously, milliseconds per process on a busy machine) never block the agent's
 * event loop. The worker starts with the first spawn and ends `idleMs` after the last of its processes
 * closed; it holds the Node process open only while a process it spawned is running, as a plain
 * child_process spawn would.
 */
export function createSpawner(options: { idleMs: number }): Spawner {
  let worker: Worker | undefined;
  let exited: Promise<void> | undefined;
  let nextId = 1;
  const pending = new Map<number, Pending>();
  let idleTimer: NodeJS.Timeout | undefined;
  let closed = false;

  const updateRef = () => {
    if (!worker) return;
    if (pending.size > 0) {
      if (idleTimer) clearTimeout(idleTimer);
      idleTimer = undefined;
      worker.ref();
      return;
    }
    worker.unref();
    if (idleTimer) return;
    idleTimer = setTimeout(() => {
      idleTimer = undefined;
      if (pending.size === 0 && worker) void stop();
    }, options.idleMs);
    idleTimer.unref();
  };

  const onMessage = (m: FromWorker) => {
    const p = pending.get(m.id);
    if (!p) return;
    const h = p.handlers;
    switch (m.t) {
      case 'started': {
        const started = p.started;
        p.started = undefined;
        if (m.thrown) {
          pending.delete(m.id);
          updateRef();
          started?.reject(toError(m.thrown));
          return;
        }
        p.setPid(m.pid);
        started?.resolve(m.pid);
        return;
      }
      case 'spawn':
        return h.onSpawn();
      case 'error':
        return h.onError(toError(m.error));
      case 'data':
        return h.onData(m.stream, Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.byteLength));
      case 'exit':
        return h.onExit(m.code, m.signal);
      case 'close':
        pending.delete(m.id);
        updateRef();
        return h.onClose(m.code, m.signal);
    }
  };

  /** Ends every pending process's stream of events, so no run waits forever on a worker that is gone. */
  const failPending = (error: Error) => {
    const lost = [...pending.values()];
    pending.clear();
    for (const p of lost) {
      if (p.started) {
        p.started.reject(error);
        continue;
      }
      p.handlers.onError(Object.assign(new Error(`the spawner thread ended: ${error.message}`), { code: 'ESPAWNER' }));
      p.handlers.onClose(null, null);
    }
  };

  const onWorkerGone = (error: Error) => {
    // The worker died (it should not): its children's pipes died with it. Their process groups are still
    // signalled by pid (cancel, the orphan guard).
    worker = undefined;
    exited = undefined;
    failPending(error);
  };

  const start = (): Worker => {
    if (worker) return worker;
    const w = new Worker(WORKER, { eval: true, stdout: false, stderr: false, env: {} });
    w.on('message', onMessage);
    w.on('error', (error) => onWorkerGone(error));
    exited = new Promise<void>((resolve) =>
      w.once('exit', (code) => {
        if (worker === w && pending.size > 0) onWorkerGone(new Error(`exit code ${code}`));
        if (worker === w) worker = undefined;
        resolve();
      }),
    );
    worker = w;
    return w;
  };

  const stop = async () => {
    const w = worker;
    const done = exited;
    worker = undefined;
    exited = undefined;
    if (idleTimer) clearTimeout(idleTimer);
    idleTimer = undefined;
    if (!w) return;
    await w.terminate();
    await done;
    failPending(new Error('the spawner was closed'));
  };

  return {
    spawn(request, handlers) {
      let pid: number | undefined;
      // Messages to the worker keep their order, so a pause sent right after the spawn applies to it.
      const w = closed ? undefined : start();
      const id = nextId++;
      const post = (t: 'pause' | 'resume' | 'destroy') => worker?.postMessage({ t, id });
      const started = new Promise<number | undefined>((resolve, reject) => {
        if (!w) return reject(new Error('the spawner is closed'));
        pending.set(id, { handlers, setPid: (p) => (pid = p), started: { resolve, reject } });
        updateRef();
        w.postMessage({ t: 'spawn', id, command: request.command, args: request.args, cwd: request.cwd, env: request.env });
      });
      return {
        started,
        get pid() {
          return pid;
        },
        pause: () => post('pause'),
        resume: () => post('resume'),
        destroyStdio: () => post('destroy'),
      };
    },
    async close() {
      closed = true;
      await stop();
    },
  };
}
