import { LaunchError } from '@launch/core';
import { describeValue } from '@launch/core/internal';

/**
 * An image reference split into its parts, following the grammar of Distribution's `reference`
 * package (the one `docker` uses): `[host[:port]/]path[:tag][@digest]`.
 */
export interface ImageReference {
  /** `host[:port]` as written, or `docker.io` when the reference names no host. */
  registry: string;
  /** Host name or IPv4 address, lower-case. */
  host: string;
  port?: number;
  /** The repository path, e.g. `team/app` (`library/app` on Docker Hub for a one-part name). */
  repository: string;
  tag?: string;
  /** `algorithm:hex`, e.g. `sha256:…`. */
  digest?: string;
  /** The scheme when the reference was written as a URL (`https://host/repo`). */
  scheme?: 'http' | 'https';
}

const NAME_MAX = 255;

/** A part of the input for an error message: quoted, and cut short when long. */
const shown = (part: string) => describeValue(part, 60);
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;

function invalid(input: string, what: string, hint?: string): LaunchError {
  return new LaunchError({
    code: 'registry.invalid_reference',
    stage: 'build',
    category: 'InvalidSpec',
    message: `image reference ${describeValue(input, 120)} is invalid: ${what}`,
    hint: hint ?? 'write it as host[:port]/path[:tag][@sha256:digest], with a lower-case path (letters, digits, ".", "_", "__", "-")',
  });
}

/** The first character of `part` that can never appear in it, for an error message. */
function firstBad(part: string, allowed: RegExp): string {
  for (let i = 0; i < part.length; i++) {
    if (!allowed.test(part[i]!)) return ` (found ${JSON.stringify(part[i])} at position ${i + 1})`;
  }
  return '';
}

function checkPathComponent(input: string, component: string): void {
  if (component === '') throw invalid(input, 'the repository path has an empty component (a leading, trailing or doubled "/")');
  if (PATH_COMPONENT.test(component)) return;
  const bad = firstBad(component, /[a-z0-9._-]/);
  const why = bad ? `has a character that is not allowed${bad}` : 'must start and end with a letter or digit, and separate words with ".", "_", "__" or dashes';
  throw invalid(input, `repository path component ${shown(component)} ${why}`);
}

function checkDomain(input: string, domain: string): { host: string; port?: number } {
  const colon = domain.lastIndexOf(':');
  const host = colon >= 0 ? domain.slice(0, colon) : domain;
  let port: number | undefined;
  if (colon >= 0) {
    const text = domain.slice(colon + 1);
    port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
    if (!(port >= 1 && port <= 65535)) throw invalid(input, `registry port ${shown(text)} is not a number from 1 to 65535`);
  }
  for (const component of host.split('.')) {
    if (!DOMAIN_COMPONENT.test(component)) {
      const bad = firstBad(component, /[a-zA-Z0-9-]/);
      throw invalid(
        input,
        component === ''
          ? `registry host ${shown(host)} has an empty label`
          : `registry host ${shown(host)} has an invalid label ${shown(component)}${bad || ' (labels start and end with a letter or digit)'}`,
      );
    }
  }
  return { host: host.toLowerCase(), ...(port === undefined ? {} : { port }) };
}

/**
 * Parses and validates an image reference such as `127.0.0.1:5000/team/app:v1`,
 * `ghcr.io/acme/train@sha256:…` or `python:3.12`. A leading `https://` or `http://` is accepted (W&B
 * accepts it in `builder.destination`). Throws a LaunchError (`registry.invalid_reference`) naming
 * the part that is wrong and what was found.
 */
export function parseImageReference(input: string): ImageReference {
  if (typeof input !== 'string') throw invalid(String(input), `expected a string, found ${describeValue(input)}`);
  let rest = input;
  let scheme: ImageReference['scheme'];
  const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(rest);
  if (schemeMatch) {
    const s = schemeMatch[1]!.toLowerCase();
    if (s !== 'http' && s !== 'https') throw invalid(input, `scheme ${shown(schemeMatch[1]!)} is not http or https`);
    scheme = s;
    rest = rest.slice(schemeMatch[0].length);
  }
  if (rest === '') throw invalid(input, 'it is empty');
  const space = /\s/.exec(rest);
  if (space) throw invalid(input, `it contains whitespace (${JSON.stringify(space[0])} at position ${space.index + 1 + (input.length - rest.length)})`);

  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw invalid(input, `digest ${shown(digest)} is not algorithm:hex (e.g. sha256: and at least 32 hex digits)`);
  }

  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) {
      const why =
        tag === ''
          ? 'is empty'
          : tag.length > 128
            ? `is ${tag.length} characters long (at most 128)`
            : `has a character that is not allowed${firstBad(tag, /[\w.-]/) || ' (it must start with a letter, digit or "_")'}`;
      throw invalid(input, `tag ${shown(tag)} ${why}`, 'a tag is up to 128 letters, digits, "_", "." and "-", not starting with "." or "-"');
    }
  }
  if (rest === '') throw invalid(input, 'it names no repository');

  // Docker's rule: the first component is a registry host when it has a "." or ":", is "localhost",
  // or has upper-case letters; otherwise the reference is on Docker Hub.
  const slash = rest.indexOf('/');
  const first = slash >= 0 ? rest.slice(0, slash) : '';
  let domain: string;
  let path: string;
  if (slash >= 0 && (/[.:]/.test(first) || first === 'localhost' || first !== first.toLowerCase())) {
    domain = first;
    path = rest.slice(slash + 1);
  } else {
    if (slash < 0 && tag !== undefined && /^\d+$/.test(tag) && (/\./.test(rest) || rest === 'localhost')) {
      throw invalid(input, `it names only a registry host (${rest}:${tag}) and no repository`, 'add a repository path, e.g. 127.0.0.1:5000/launch');
    }
    domain = 'docker.io';
    path = rest;
  }
  const checked = checkDomain(input, domain);
  const port = checked.port;
  const host = checked.host === 'index.docker.io' && port === undefined ? 'docker.io' : checked.host;
  if (host === 'docker.io' && port === undefined && !path.includes('/')) path = `library/${path}`;
  for (const component of path.split('/')) checkPathComponent(input, component);
  const fullName = `${host}${port === undefined ? '' : `:${port}`}/${path}`;
  if (fullName.length > NAME_MAX) throw invalid(input, `the name is ${fullName.length} characters long (at most ${NAME_MAX})`);
  return {
    registry: port === undefined ? host : `${host}:${port}`,
    host,
    ...(port === undefined ? {} : { port }),
    repository: path,
    ...(tag === undefined ? {} : { tag }),
    ...(digest === undefined ? {} : { digest }),
    ...(scheme === undefined ? {} : { scheme }),
  };
}

/** `registry/repository[:tag][@digest]`, the canonical text of a reference (no scheme). */
export function formatImageReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** Whether `host` is a loopback address or name (plain HTTP is allowed to it without `insecure`). */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || /^127(?:\.\d{1,3}){3}$/.test(host) || host === '::1' || host === '[::1]';
}

/**
 * The host when `uri` names only a registry host (`ghcr.io`, `127.0.0.1:5000`, `https://localhost`)
 * and no repository, which Docker's grammar would otherwise read as a Docker Hub repository.
 */
export function registryHostOnly(uri: string): string | undefined {
  const bare = uri.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\//, '').replace(/\/+$/, '');
  return !bare.includes('/') && (/[.:]/.test(bare) || bare === 'localhost') ? bare : undefined;
}
