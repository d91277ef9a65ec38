/**
 * @launch/registries: where images are pushed and whether one already exists. The registry is chosen
 * from the destination's host as W&B does; any host that is not a cloud registry gets a generic OCI
 * Distribution v2 registry with the Basic and Bearer token flows.
 *
 * @packageDocumentation
 */
export * from './oci-registry.js';
export * from './select.js';
export * from './reference.js';
export * from './challenge.js';
export * from './docker-config.js';
