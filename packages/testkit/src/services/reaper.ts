import { spawn } from 'node:child_process';

/**
 * The reaper, run as `node -e SCRIPT <owner pid> <root>` in its own session, so that a signal to the
 * test run's process group (Ctrl-C, `timeout`) does not reach it. Once the owner (the vitest process
 * that ran the global set-up) is gone without tearing down, it does the teardown: SIGTERM to every
 * process whose command line names `root` (our daemons, dockerd's containerd), SIGKILL after 15 s,
 * unmount what is left below `root`, remove `root`.
 */
const SCRIPT = String.raw`
const { readdirSync, readFileSync, rmSync } = require('node:fs');
const { execFileSync } = require('node:child_process');
const owner = Number(process.argv[1]);
const root = process.argv[2];
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch (e) { return e.code === 'EPERM'; } };
const ours = () => readdirSync('/proc').filter((e) => /^\d+$/.test(e) && Number(e) !== process.pid).filter((e) => {
  try { return readFileSync('/proc/' + e + '/cmdline', 'utf8').includes(root); } catch { return false; }
}).map(Number);
const mounts = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((p) => p && (p === root || p.startsWith(root + '/'))).sort((a, b) => b.length - a.length);
function reap() {
  clearInterval(timer);
  for (const pid of ours()) { try { process.kill(pid, 'SIGTERM'); } catch {} }
  const deadline = Date.now() + 15000;
  const check = setInterval(() => {
    const left = ours();
    if (left.length && Date.now() < deadline) return;
    clearInterval(check);
    for (const pid of left) { try { process.kill(pid, 'SIGKILL'); } catch {} }
    for (const point of mounts()) { try { execFileSync('umount', [point]); } catch { try { execFileSync('umount', ['-l', point]); } catch {} } }
    if (!mounts().length) { try { rmSync(root, { recursive: true, force: true, maxRetries: 3 }); } catch {} }
    process.exit(0);
  }, 100);
}
const timer = setInterval(() => { if (!alive(owner)) reap(); }, 500);
`;

/** Starts the reaper for `root` (see above); returns a function that stops it once teardown has run. */
export function startReaper(root: string): () => void {
  const child = spawn(process.execPath, ['-e', SCRIPT, String(process.pid), root], { detached: true, stdio: 'ignore' });
  child.on('error', () => undefined);
  child.unref();
  return () => {
    try {
      if (child.pid && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
}
