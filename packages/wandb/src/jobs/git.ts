import { spawn } from 'node:child_process';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { LaunchError, type Logger } from '@launch/core';

export interface GitOptions {
  /** The git executable. */
  gitPath: string;
  /** Allow `file://` remotes (and submodules); W&B refuses them, tests and local mirrors need them. */
  allowFileRemotes: boolean;
  logger: Logger;
  /** Time limit of one git command. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

const SCP_LIKE = /^[\w.+-]+@[\w.-]+:.+/;
/** A ref git cannot take for an option or a range. */
const REF = /^[A-Za-z0-9_][A-Za-z0-9._/+-]*$/;
const MAX_OUTPUT = 64 * 1024;

/** The remote with any password or token in its user info replaced, for messages and `sourceString`. */
export function displayRemote(remote: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/@]*)@/i.exec(remote);
  if (!m) return remote;
  const user = m[2]!.split(':')[0]!;
  return `${m[1]}${m[2]!.includes(':') ? `${user}:***` : '***'}@${remote.slice(m[0].length)}`;
}

/** Secrets a remote carries in its user info (`https://user:token@…` → the token; `https://token@…` → the token). */
function remoteSecrets(remote: string): string[] {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/@]*)@/i.exec(remote);
  if (!m) return [];
  const info = m[1]!;
  const parts = info.split(':');
  const out = [info];
  if (parts.length > 1) out.push(parts.slice(1).join(':'));
  for (const s of [...out]) {
    try {
      const decoded = decodeURIComponent(s);
      if (decoded !== s) out.push(decoded);
    } catch {
      // Not percent-encoded.
    }
  }
  return out.filter((s) => s.length > 0);
}

/**
 * Checks a job's git remote as W&B's agent does (`git_reference._validate_uri`): `https://`,
 * `ssh://` and `user@host:path` only, never a value git would read as an option; `file://` only when
 * allowed.
 */
export function checkRemote(remote: string, job: string, allowFile: boolean): void {
  const r = remote.trim();
  const ok = !r.startsWith('-') && (/^(https|ssh):\/\//i.test(r) || SCP_LIKE.test(r) || (allowFile && /^file:\/\//i.test(r)));
  if (!ok) {
    throw new LaunchError({
      code: 'wandb.git_remote_refused',
      stage: 'agent',
      message: `job ${job} names git remote ${JSON.stringify(displayRemote(r))}: only https://, ssh:// and git@host:path remotes are fetched${allowFile ? ' (and file://)' : ''}`,
    });
  }
}

/**
 * Fetches a commit of a remote into `dir` (a new repository) the way W&B's agent does
 * (`GitReference.fetch`), shallow where the server allows: the commit (or branch) alone with
 * `--depth 1`; if the server refuses that, the whole remote, then `origin/<ref>` if it is a branch
 * or the commit itself; with no ref, `main` then `master`. Submodules are updated recursively.
 * Credentials in the remote never reach a message, and are removed from `.git/config` afterwards.
 * Returns the checked-out commit.
 */
export async function fetchGitCommit(dir: string, remote: string, ref: string | null, job: string, options: GitOptions): Promise<string> {
  const secrets = remoteSecrets(remote);
  const scrub = (s: string) => secrets.reduce((acc, secret) => acc.split(secret).join('***'), s);
  const shown = displayRemote(remote);
  const protocol = ['-c', `protocol.file.allow=${options.allowFileRemotes ? 'always' : 'never'}`, '-c', 'protocol.ext.allow=never'];

  async function git(args: string[], what: string): Promise<string> {
    const r = await run(options.gitPath, args, dir, options);
    if (r.code !== 0) {
      throw new LaunchError({
        code: 'wandb.git_failed',
        stage: 'agent',
        message: scrub(
          `cannot ${what} for job ${job} from ${shown}: git ${args.filter((a) => a !== remote).join(' ')} exited ${r.code ?? r.signal}: ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`,
        ),
        hint: 'check that the remote and commit exist and that this machine can reach them (credential helper, SSH key, proxy)',
      });
    }
    return r.stdout;
  }
  const attempt = (args: string[]) => run(options.gitPath, args, dir, options).then((r) => r.code === 0);

  if (ref !== null && (!REF.test(ref) || ref.includes('..'))) {
    throw new LaunchError({
      code: 'wandb.job_invalid',
      stage: 'agent',
      message: `source.git.commit of job ${job} is not a commit or branch name: ${JSON.stringify(ref.slice(0, 80))}`,
    });
  }
  await git(['init', '-q', '.'], 'create a repository');
  await git(['remote', 'add', 'origin', '--', remote], 'add the remote');
  if (ref !== null && ref !== '') {
    if (await attempt([...protocol, 'fetch', '-q', '--depth', '1', 'origin', ref])) {
      await git(['-c', 'advice.detachedHead=false', 'checkout', '-q', '--detach', 'FETCH_HEAD'], `check out ${ref}`);
    } else {
      options.logger.info({ job, remote: shown, ref }, `shallow fetch of ${ref} refused; fetching the whole remote`);
      await git([...protocol, 'fetch', '-q', 'origin'], 'fetch the remote');
      const branch = await attempt(['show-ref', '--verify', '--quiet', `refs/remotes/origin/${ref}`]);
      await git(['-c', 'advice.detachedHead=false', 'checkout', '-q', '--detach', branch ? `origin/${ref}` : ref], `check out ${ref}`);
    }
  } else {
    let found = false;
    for (const branch of ['main', 'master']) {
      if (await attempt([...protocol, 'fetch', '-q', '--depth', '1', 'origin', branch])) {
        await git(['-c', 'advice.detachedHead=false', 'checkout', '-q', '--detach', 'FETCH_HEAD'], `check out ${branch}`);
        found = true;
        break;
      }
    }
    if (!found) {
      throw new LaunchError({
        code: 'wandb.git_failed',
        stage: 'agent',
        message: `job ${job} names no commit and ${shown} has neither a main nor a master branch`,
      });
    }
  }
  const commit = (await git(['rev-parse', 'HEAD'], 'read the commit')).trim();
  if (await exists(join(dir, '.gitmodules'))) {
    await git([...protocol, 'submodule', 'update', '-q', '--init', '--recursive'], 'update the submodules');
  }
  // The code directory reaches jobs (mounted, or in an image): it must not carry the remote's credentials.
  if (secrets.length > 0) await git(['remote', 'set-url', 'origin', '--', shown], 'remove credentials from the remote');
  return commit;
}

/** Applies `diff.patch` (uncommitted changes the job was logged with) to the checkout. */
export async function applyPatch(dir: string, patchPath: string, job: string, options: GitOptions): Promise<void> {
  const r = await run(options.gitPath, ['apply', '--whitespace=nowarn', patchPath], dir, options);
  if (r.code !== 0) {
    throw new LaunchError({
      code: 'wandb.patch_failed',
      stage: 'agent',
      message: `cannot apply diff.patch of job ${job}: ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`,
      hint: 'the patch does not fit the commit the job names; log the job again',
    });
  }
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs git with an argument array (no shell), no terminal prompts, output capped. */
function run(gitPath: string, args: string[], cwd: string, options: GitOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const signals = [AbortSignal.timeout(options.timeoutMs), ...(options.signal ? [options.signal] : [])];
    const child = spawn(gitPath, args, {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GCM_INTERACTIVE: 'never', LC_ALL: 'C' },
      signal: AbortSignal.any(signals),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      if (stdout.length < MAX_OUTPUT) stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr = (stderr + c.toString()).slice(-MAX_OUTPUT);
    });
    child.on('error', (error) => {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(
          new LaunchError({ code: 'wandb.git_missing', stage: 'agent', message: `git is not installed at ${gitPath}`, hint: 'install git, or set gitPath' }),
        );
      } else if (error.name === 'AbortError') {
        resolve({
          code: null,
          signal: 'SIGTERM',
          stdout,
          stderr: `${stderr}\n(stopped: ${options.signal?.aborted ? 'cancelled' : `took longer than ${options.timeoutMs} ms`})`,
        });
      } else reject(error);
    });
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}
