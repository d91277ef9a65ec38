/**
 * @launch/cloud-gcp: the Google Cloud environment (`environment.type: gcp`), the Artifact Registry
 * registry and the GCS build-context store, on `google-auth-library` and `@google-cloud/storage`. The
 * libraries are loaded with import() when a factory's object first makes a call, so importing this
 * package costs nothing until Google Cloud is used.
 *
 * @packageDocumentation
 */
export * from './environment.js';
export * from './regions.js';
export * from './gcs-context-store.js';
export * from './gcs-uri.js';
export * from './gar-registry.js';
export * from './gar-uri.js';
export { ADC_CHAIN_TEXT } from './errors.js';
