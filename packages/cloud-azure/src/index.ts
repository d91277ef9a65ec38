/**
 * @launch/cloud-azure: the Azure environment (`environment.type: azure`), the Azure Container
 * Registry and the Azure Blob build-context store, on `@azure/identity` and `@azure/storage-blob`.
 * The SDK is loaded with import() when a factory's object first makes a call, so importing this
 * package costs nothing until Azure is used.
 *
 * @packageDocumentation
 */
export * from './environment.js';
export * from './blob-context-store.js';
export * from './blob-uri.js';
export { DEFAULT_CHAIN } from './errors.js';
export * from './acr-registry.js';
