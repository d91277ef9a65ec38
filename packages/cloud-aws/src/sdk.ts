/**
 * The AWS SDK, loaded with import() on first use: importing this package costs nothing until a
 * factory's client is needed, so an agent with no AWS configured never loads the SDK.
 */
type S3Module = typeof import('@aws-sdk/client-s3');
type EcrModule = typeof import('@aws-sdk/client-ecr');
type StsModule = typeof import('@aws-sdk/client-sts');
type CredentialsModule = typeof import('@aws-sdk/credential-providers');

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

export const loadS3: () => Promise<S3Module> = once(() => import('@aws-sdk/client-s3'));
export const loadEcr: () => Promise<EcrModule> = once(() => import('@aws-sdk/client-ecr'));
export const loadSts: () => Promise<StsModule> = once(() => import('@aws-sdk/client-sts'));
export const loadCredentialProviders: () => Promise<CredentialsModule> = once(() => import('@aws-sdk/credential-providers'));
