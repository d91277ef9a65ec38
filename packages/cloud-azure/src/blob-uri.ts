import { LaunchValidationError } from '@launch/core';
import { describeValue } from '@launch/core/internal';

/** Where a Blob context store writes: the parsed `build-context-store` URI. */
export interface BlobLocation {
  /** The storage account (`<account>.blob.core.windows.net`, or the first path segment on an emulator). */
  account: string;
  container: string;
  /** Blob-name prefix without leading or trailing `/`; may be empty. */
  prefix: string;
  /** The account's service URL: `https://<account>.blob.core.windows.net` or `http://127.0.0.1:10000/<account>`. */
  serviceUrl: string;
  /** The URI without a trailing `/`: `<serviceUrl>/<container>[/<prefix>]`; uploaded blobs are under it. */
  base: string;
  /** Whether the account is in the path (Azurite, the storage emulator) rather than the host. */
  pathStyle: boolean;
}

const HOST = /^([a-z0-9]{3,24})\.blob\.(core\.windows\.net|core\.chinacloudapi\.cn|core\.usgovcloudapi\.net)$/;
const CONTAINER = /^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;
const ACCOUNT = /^[a-z0-9]{3,24}$/;
const EXPECTED = 'https://<account>.blob.core.windows.net/<container>[/<prefix>] (or http://127.0.0.1:<port>/<account>/<container>[/<prefix>] for Azurite)';

function invalid(uri: unknown, message: string): LaunchValidationError {
  return new LaunchValidationError({
    code: 'context_store.invalid_uri',
    stage: 'agent',
    subject: 'Azure Blob context store',
    issues: [{ path: 'uri', expected: EXPECTED, found: describeValue(uri, 200), message }],
  });
}

function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

/** A blob-name problem (as text), or undefined when `key` is a safe blob name that needs no escaping in a URL. */
export function blobKeyProblem(key: string): string | undefined {
  if (key === '') return 'is empty';
  if (key.length > 1024) return `is ${key.length} characters long (at most 1024)`;
  if (key.startsWith('/') || key.endsWith('/')) return 'starts or ends with "/"';
  if (key.split('/').some((s) => s === '' || s === '.' || s === '..')) return 'has an empty, "." or ".." path segment';
  const bad = /[^A-Za-z0-9\-_.!*'()+=@,:/~]/.exec(key);
  if (bad) return `contains ${JSON.stringify(bad[0])}, which is not one of the letters, digits and -_.!*'()+=@,:/~ blob names may use here`;
  return undefined;
}

/**
 * Parses a Blob `build-context-store` URI: `https://<account>.blob.core.windows.net/<container>[/<prefix>]`
 * (also the China and US Government clouds), or, for Azurite, `http(s)://127.0.0.1:<port>/<account>/<container>[/<prefix>]`.
 * Plain `http:` is accepted only for a loopback emulator.
 */
export function parseBlobUri(uri: unknown): BlobLocation {
  if (typeof uri !== 'string' || uri === '') throw invalid(uri, `expected ${EXPECTED}`);
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw invalid(uri, `not a URL: expected ${EXPECTED}`);
  }
  if (url.search || url.hash || url.username || url.password)
    throw invalid(uri, 'must not carry a query, fragment or user info (a SAS token or key belongs in the credentials, not the URI)');
  const segments = url.pathname.split('/').filter((s) => s !== '');
  const loopback = isLoopbackHost(url.hostname);
  const hosted = HOST.exec(url.hostname);
  let account: string;
  let serviceUrl: string;
  let pathStyle: boolean;
  if (hosted && !loopback) {
    if (url.protocol !== 'https:') throw invalid(uri, `Azure Blob Storage needs https:, found ${url.protocol}`);
    account = hosted[1]!;
    serviceUrl = `https://${url.host}`;
    pathStyle = false;
  } else if (loopback) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(uri, `expected http: or https:, found ${url.protocol}`);
    const first = segments.shift();
    if (!first || !ACCOUNT.test(first))
      throw invalid(
        uri,
        `an emulator URI starts its path with the account name (3-24 lowercase letters and digits, e.g. devstoreaccount1); found ${describeValue(first ?? '')}`,
      );
    account = first;
    serviceUrl = `${url.protocol}//${url.host}/${account}`;
    pathStyle = true;
  } else {
    throw invalid(uri, `host ${url.hostname} is not an Azure Blob endpoint (<account>.blob.core.windows.net)`);
  }
  const container = segments.shift();
  if (!container) throw invalid(uri, 'names no container: add /<container> after the host');
  if (!CONTAINER.test(container))
    throw invalid(
      uri,
      `container ${describeValue(container)} is not a valid container name (3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit)`,
    );
  const prefix = segments.join('/');
  if (prefix) {
    const problem = blobKeyProblem(prefix);
    if (problem) throw invalid(uri, `prefix ${describeValue(prefix)} ${problem}`);
  }
  return { account, container, prefix, serviceUrl, base: `${serviceUrl}/${container}${prefix ? `/${prefix}` : ''}`, pathStyle };
}
