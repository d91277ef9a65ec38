/**
 * The Azure SDK, loaded with import() on first use: importing this package costs nothing until a
 * factory's client is needed, so an agent with no Azure configured never loads the SDK.
 */
type BlobModule = typeof import('@azure/storage-blob');
type IdentityModule = typeof import('@azure/identity');

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

export const loadBlob: () => Promise<BlobModule> = once(() => import('@azure/storage-blob'));
export const loadIdentity: () => Promise<IdentityModule> = once(() => import('@azure/identity'));
