import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ServingCertificate {
  /** PEM certificate: also the CA a client trusts (self-signed). */
  cert: string;
  /** PEM private key. */
  key: string;
}

/**
 * A self-signed serving certificate for 127.0.0.1 and localhost, made with the `openssl` command (Node cannot issue
 * X.509 certificates itself). Valid for a day: long enough for any test.
 */
export function selfSignedCertificate(): ServingCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'kube-test-tls-'));
  try {
    const key = join(dir, 'tls.key');
    const cert = join(dir, 'tls.crt');
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=kube-test-server',
          '-addext',
          'subjectAltName=IP:127.0.0.1,DNS:localhost',
          '-keyout',
          key,
          '-out',
          cert,
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
    } catch (error) {
      const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? '';
      throw new Error(
        `the Kubernetes test server's TLS certificate could not be made with openssl (apt-get install openssl): ${stderr || (error as Error).message}`,
      );
    }
    return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
