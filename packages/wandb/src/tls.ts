import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { LaunchError } from '@launch/core';
import { Agent } from 'undici';

/** Environment variables naming extra CA certificates, in the order they are read. */
export const CA_BUNDLE_ENV = ['REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'NODE_EXTRA_CA_CERTS'] as const;

export interface CaBundleOptions {
  /** A PEM file of extra CA certificates (option `caCertFile`). */
  caCertFile?: string;
  /** PEM text of extra CA certificates. */
  ca?: string;
  env?: Record<string, string | undefined>;
}

/**
 * Collects the extra CA certificates W&B users configure: an explicit file, `REQUESTS_CA_BUNDLE`
 * (what W&B's Helm chart sets for Python's requests), `CURL_CA_BUNDLE` and `NODE_EXTRA_CA_CERTS`
 * (Node reads that one only at process start, so a value set for the agent alone would be missed).
 * Returns the PEM texts and where each came from.
 */
export function readExtraCas(options: CaBundleOptions): Array<{ origin: string; pem: string }> {
  const out: Array<{ origin: string; pem: string }> = [];
  const seen = new Set<string>();
  const read = (path: string, origin: string) => {
    if (seen.has(path)) return;
    seen.add(path);
    let pem: string;
    try {
      pem = readFileSync(path, 'utf8');
    } catch (e) {
      throw new LaunchError({
        code: 'wandb.ca_bundle_unreadable',
        message: `cannot read the CA bundle ${path} named by ${origin}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
        hint: `point ${origin} at a readable PEM file, or unset it`,
        cause: e,
      });
    }
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
      throw new LaunchError({
        code: 'wandb.ca_bundle_invalid',
        message: `the CA bundle ${path} named by ${origin} holds no PEM certificate`,
        hint: 'a CA bundle is a text file of "-----BEGIN CERTIFICATE-----" blocks',
      });
    }
    out.push({ origin, pem });
  };
  if (options.caCertFile) read(options.caCertFile, 'caCertFile');
  if (options.ca) out.push({ origin: 'ca', pem: options.ca });
  for (const name of CA_BUNDLE_ENV) {
    const path = options.env?.[name]?.trim();
    if (path) read(path, name);
  }
  return out;
}

/**
 * An undici dispatcher for the W&B API: keep-alive connections, trusting the system roots plus any
 * extra CA (a private W&B server behind a corporate CA).
 */
export function createWandbDispatcher(options: CaBundleOptions & { connectTimeoutMs?: number }): Agent {
  const extras = readExtraCas(options);
  return new Agent({
    keepAliveTimeout: 30_000,
    connect: {
      timeout: options.connectTimeoutMs ?? 10_000,
      ...(extras.length > 0 ? { ca: [...rootCertificates, ...extras.map((e) => e.pem)] } : {}),
    },
  });
}
