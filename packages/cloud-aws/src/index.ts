/**
 * @launch/cloud-aws: the AWS environment (`environment.type: aws`), the Amazon ECR registry and the
 * S3 build-context store, on the AWS SDK v3. The SDK is loaded with import() when a factory's object
 * first makes a call, so importing this package costs nothing until AWS is used.
 *
 * @packageDocumentation
 */
export * from './environment.js';
export * from './s3-context-store.js';
export * from './s3-uri.js';
export * from './ecr-registry.js';
export * from './ecr-uri.js';
export { credentialChainText } from './errors.js';
