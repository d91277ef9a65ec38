/**
 * The Google Cloud libraries, loaded with import() on first use: importing this package costs nothing
 * until a factory's object makes a call, so an agent with no GCP configured never loads them.
 */
type StorageModule = typeof import('@google-cloud/storage');
type AuthModule = typeof import('google-auth-library');

function once<T>(load: () => Promise<T>): () => Promise<T> {
  let promise: Promise<T> | undefined;
  return () => {
    promise ??= load().catch((error: unknown) => {
      promise = undefined;
      throw error;
    });
    return promise;
  };
}

export const loadStorage: () => Promise<StorageModule> = once(() => import('@google-cloud/storage'));
export const loadAuth: () => Promise<AuthModule> = once(() => import('google-auth-library'));
