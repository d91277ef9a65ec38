import { contextError } from './errors.js';

/** The name W&B gives the Dockerfile inside every build context it makes. */
export const WANDB_DOCKERFILE = 'Dockerfile.wandb';

/** Where the Python dependencies of a generated build come from (W&B's order). */
export type RequirementsSource =
  | { kind: 'requirements.txt' }
  | { kind: 'pyproject.toml'; dependencies: string[] }
  | { kind: 'requirements.frozen.txt' }
  | { kind: 'none' };

export interface GeneratedDockerfileInput {
  /** Python `major.minor` (see {@link pythonMajorMinor}). */
  pythonVersion: string;
  requirements: RequirementsSource;
  /** `resource_args.<resource>.builder.accelerator.base_image` (or `cuda.base_image`), validated. */
  acceleratorBaseImage?: string;
  /** The user the job runs as: W&B's `docker.user_id` (default 1000) and a fixed name. */
  user: { name: string; uid: number };
  /** W&B runs SageMaker images as root. */
  resource?: string;
  /** The job's command, written as `ENTRYPOINT`. */
  entryPoint: readonly string[];
  /**
   * W&B's `RUN` prefix: a BuildKit cache mount when buildx is available, else
   * `RUN WANDB_DISABLE_CACHE=true` (always for kaniko and for the Docker engine API's classic builder).
   */
  cacheMount?: boolean;
}

/** `3.10.12` → `3.10`; throws naming the field when the version is not `major.minor[.patch…]`. */
export function pythonMajorMinor(version: string, field: string): string {
  const match = /^(\d{1,2})\.(\d{1,3})(?:\.[0-9A-Za-z.+-]*)?$/.exec(version.trim());
  if (!match) {
    throw contextError({
      code: 'invalid_python_version',
      message: `${field} is ${JSON.stringify(version)}: expected a Python version such as "3.11" or "3.11.4"`,
      hint: `set ${field} to the job's Python version (major.minor)`,
    });
  }
  return `${Number(match[1])}.${Number(match[2])}`;
}

const DIGEST = /@sha256:[a-f0-9]{64}$/;
// A Docker image reference: [host[:port]/]path[:tag][@sha256:digest].
const REFERENCE =
  /^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;

/**
 * Checks an accelerator base image as W&B does before it goes into a `FROM` line: no whitespace or
 * `#` (nothing can be smuggled into the Dockerfile), digests only as `@sha256:<64 hex>`, and
 * otherwise a well-formed image reference.
 */
export function validateAcceleratorImage(image: string, field: string): string {
  const problem = /\s/.test(image)
    ? 'contains whitespace'
    : image.includes('#')
      ? 'contains "#"'
      : image.includes('@') && !DIGEST.test(image)
        ? 'has a digest that is not @sha256:<64 hex digits>'
        : !REFERENCE.test(image)
          ? 'is not an image reference ([registry/]name[:tag][@sha256:digest], lower-case name)'
          : undefined;
  if (problem) {
    throw contextError({
      code: 'invalid_base_image',
      message: `${field} ${JSON.stringify(image.length > 200 ? `${image.slice(0, 200)}…` : image)} ${problem}`,
      hint: `set ${field} to an image such as nvidia/cuda:12.2.0-runtime-ubuntu22.04`,
    });
  }
  return image;
}

/** Python's `json.dumps` of a list of strings (", " separators, non-ASCII escaped), as W&B writes ENTRYPOINT. */
export function pythonJsonList(items: readonly string[]): string {
  const escape = (s: string) => JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `[${items.map(escape).join(', ')}]`;
}

function requirementsSection(input: GeneratedDockerfileInput): string {
  const run = input.cacheMount ? 'RUN --mount=type=cache,mode=0777,target=/root/.cache/pip' : 'RUN WANDB_DISABLE_CACHE=true';
  const venv = ['RUN python -m venv /env', 'ENV VIRTUAL_ENV=/env', 'ENV PATH="/env/bin:$PATH"'];
  switch (input.requirements.kind) {
    case 'requirements.txt':
    case 'pyproject.toml':
      return [...venv, 'COPY src/requirements.txt ./', `${run} pip install uv && uv pip install -r requirements.txt`].join('\n');
    case 'requirements.frozen.txt':
      return [...venv, 'COPY src/requirements.frozen.txt _wandb_bootstrap.py ./', `${run} python _wandb_bootstrap.py`].join('\n');
    case 'none':
      return 'RUN mkdir -p /env/';
  }
}

function baseSection(input: GeneratedDockerfileInput): string {
  const v = input.pythonVersion;
  if (input.acceleratorBaseImage) {
    return [
      `FROM ${input.acceleratorBaseImage} AS base`,
      'ENV DEBIAN_FRONTEND=noninteractive',
      `RUN apt-get update -qq && apt-get install --no-install-recommends -y python${v} libpython${v} python3-pip python3-setuptools \\`,
      '    && apt-get -qq purge && apt-get -qq clean && rm -rf /var/lib/apt/lists/*',
      `RUN update-alternatives --install /usr/bin/python python /usr/bin/python${v} 1 \\`,
      `    && update-alternatives --install /usr/local/bin/python python /usr/bin/python${v} 1`,
    ].join('\n');
  }
  const minor = Number(v.split('.')[1]);
  return `FROM python:${v}-${minor < 12 ? 'buster' : 'bookworm'} AS base`;
}

/**
 * W&B's generated Dockerfile (`builder/templates/dockerfile.py`), written out by us: a build stage
 * on `python:<v>` that installs the dependencies into `/env`, then a base stage on
 * `python:<v>-buster` (before 3.12) or `-bookworm` (from 3.12), or on the accelerator image with
 * Python installed by apt, which gets `/env`, a user with the job's uid in group 0, the code from
 * `src/` in its home directory, `PYTHONUNBUFFERED=1` and the entry point.
 */
export function generateDockerfile(input: GeneratedDockerfileInput): string {
  const { name, uid } = input.user;
  const home = `/home/${name}`;
  const user =
    input.resource === 'sagemaker'
      ? ['USER root']
      : [`RUN useradd --create-home --no-log-init --shell /bin/bash --gid 0 --uid ${uid} ${name} || echo ""`, `USER ${name}`];
  return [
    "# Generated by Launch from the job's code (W&B's layout: build stage, base stage, code from src/).",
    `FROM python:${input.pythonVersion} AS build`,
    'ENV PIP_PROGRESS_BAR=off',
    requirementsSection(input),
    '',
    baseSection(input),
    'COPY --from=build /env /env',
    'ENV VIRTUAL_ENV=/env',
    'ENV PATH="/env/bin:$PATH"',
    'ENV SHELL=/bin/bash',
    ...user,
    `WORKDIR ${home}`,
    `RUN chown -R ${uid} ${home} && mkdir -p ${home}/.cache && chown -R ${uid} ${home}/.cache`,
    `COPY --chown=${uid} src/ ${home}`,
    'ENV PYTHONUNBUFFERED=1',
    `ENTRYPOINT ${pythonJsonList(input.entryPoint)}`,
    '',
  ].join('\n');
}

/**
 * Installs `requirements.frozen.txt` (a `pip freeze` of the run that made the job) the way W&B's
 * `_wandb_bootstrap.py` does, in our own words: without dependency resolution (`--no-deps`), with
 * the PyTorch wheel index for `+cuXXX` torch pins, and dropping the packages that fail to install
 * one round at a time, so one bad pin does not fail the build. It prints
 * `ERROR: Failed to install: a,b. During automated build process.` for the dropped ones, the line
 * the builders turn into a warning.
 */
export const BOOTSTRAP_SCRIPT = `"""Install requirements.frozen.txt package by package (written by Launch)."""
import re
import subprocess
import sys


def pip_install(packages, extra_args):
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check"] + extra_args + packages
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def main():
    with open("requirements.frozen.txt") as f:
        reqs = [line.strip() for line in f if line.strip() and not line.strip().startswith(("#", "-"))]
    extra = []
    for req in reqs:
        cuda = re.match(r"^torch(?:vision|audio)?==[^+]+\\+(cu\\d+)$", req)
        if cuda:
            extra = ["--extra-index-url", "https://download.pytorch.org/whl/" + cuda.group(1)]
            break
    failed = []
    pending = list(reqs)
    while pending:
        result = pip_install(pending, extra)
        print(result.stdout)
        if result.returncode == 0:
            break
        round_failed = [req for req in pending if pip_install([req], extra).returncode != 0]
        if not round_failed:
            break
        failed += round_failed
        pending = [req for req in pending if req not in round_failed]
    if failed:
        print("ERROR: Failed to install: " + ",".join(failed) + ". During automated build process.")


if __name__ == "__main__":
    main()
`;
