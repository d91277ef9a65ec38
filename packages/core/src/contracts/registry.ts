import type { CallContext, SpecificationVersion } from './common.js';

export interface RegistryCredentials {
  username: string;
  /** A secret: never log it. */
  password: string;
}

export interface Registry {
  readonly specificationVersion: SpecificationVersion;
  /** `ecr`, `gcr`, `acr`, `local`, `anonymous`, `oci`, … */
  readonly name: string;
  /** Repository URI images are pushed to, e.g. `127.0.0.1:5000/launch`; empty for the local registry. */
  readonly uri: string;
  /** Credentials for pushing and pulling, or null when none are needed. */
  credentials(ctx: CallContext): Promise<RegistryCredentials | null>;
  /** Whether `imageUri` already exists, so a build can be skipped. */
  imageExists(imageUri: string, ctx: CallContext): Promise<boolean>;
  /** Whether pods need an image-pull secret for this registry. */
  readonly needsPullSecret: boolean;
}
