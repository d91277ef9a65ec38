import type { CallContext, SpecificationVersion } from './common.js';

/** Where build contexts go for remote builders (S3, GCS, Azure Blob, a PVC). */
export interface ContextStore {
  readonly specificationVersion: SpecificationVersion;
  readonly name: string;
  /** Checks the store is reachable and writable; throws a LaunchError (category `ContextUpload`). */
  verify(ctx: CallContext): Promise<void>;
  /** Uploads a local file under `key`; returns the URI builders read it from. */
  upload(localPath: string, key: string, ctx: CallContext): Promise<{ uri: string }>;
  /** Removes an uploaded object; a missing object is not an error. */
  delete?(uri: string, ctx: CallContext): Promise<void>;
}
