import { startGarServer, type GarTestServer } from './gar-server.js';
import { startGcsServer, type GcsTestServer } from './gcs-server.js';
import { startOAuthServer, type OAuthTestServer, type ServiceAccountKey } from './oauth-server.js';

export const TEST_PROJECT = 'launch-test-project';
export const TEST_ACCOUNT = `launch-agent@${TEST_PROJECT}.iam.gserviceaccount.com`;

/** The variables Application Default Credentials and gcp-metadata read; tests replace them all. */
const GOOGLE_VARIABLES = [
  'GOOGLE_APPLICATION_CREDENTIALS',
  'GOOGLE_CLOUD_PROJECT',
  'GCLOUD_PROJECT',
  'GOOGLE_CLOUD_REGION',
  'CLOUDSDK_CONFIG',
  'METADATA_SERVER_DETECTION',
  'GCE_METADATA_HOST',
  'GCE_METADATA_IP',
];

/**
 * Points Application Default Credentials at `keyPath` only: sets `GOOGLE_APPLICATION_CREDENTIALS`,
 * an empty gcloud config dir (so the developer's `gcloud auth application-default login` file is not
 * read) and `METADATA_SERVER_DETECTION=none` (gcp-metadata then never probes the metadata server; the
 * loopback guard refuses it anyway). Returns a function restoring the previous values.
 */
export function isolateGoogleEnv(keyPath: string, emptyDir: string): () => void {
  const saved = Object.fromEntries(GOOGLE_VARIABLES.map((k) => [k, process.env[k]]));
  for (const k of GOOGLE_VARIABLES) delete process.env[k];
  process.env.GOOGLE_APPLICATION_CREDENTIALS = keyPath;
  process.env.CLOUDSDK_CONFIG = emptyDir;
  process.env.METADATA_SERVER_DETECTION = 'none';
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

export interface GoogleTestServers {
  oauth: OAuthTestServer;
  gcs: GcsTestServer;
  gar: GarTestServer;
  /** The agent's service account key (token_uri → the OAuth test server). */
  key: ServiceAccountKey;
  close(): Promise<void>;
}

/** The OAuth token endpoint, a GCS server and a GAR server sharing its tokens, and one service account. */
export async function startGoogleTestServers(): Promise<GoogleTestServers> {
  const oauth = await startOAuthServer();
  const gcs = await startGcsServer({ check: (t) => oauth.check(t) });
  const gar = await startGarServer({ check: (t) => oauth.check(t) });
  const key = oauth.addServiceAccount(TEST_ACCOUNT, { projectId: TEST_PROJECT });
  return {
    oauth,
    gcs,
    gar,
    key,
    async close() {
      await Promise.all([gcs.close(), gar.close()]);
      await oauth.close();
    },
  };
}
