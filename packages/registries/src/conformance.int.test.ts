import { describe } from 'vitest';
import { describeRegistry, dockerService, pushTestImage, registryServices, serviceAvailable } from '@launch/testkit';
import { createOciRegistry } from './oci-registry.js';

const docker = dockerService();
const registries = registryServices();
const ready = serviceAvailable('the test Docker engine and registries', !!docker && !!registries);

describe.runIf(ready)('OCI registry against Distribution', () => {
  for (const kind of ['plain', 'basic', 'bearer'] as const) {
    describeRegistry(`oci (${kind})`, () => {
      const host = registries![kind];
      const credentials = kind === 'plain' ? null : { username: registries!.username, password: registries!.password };
      const uri = `${host}/conformance/${kind}`;
      const make = (password?: string) =>
        createOciRegistry({
          uri,
          useDockerConfig: false,
          ...(credentials ? { credentials: { username: credentials.username, password: password ?? credentials.password } } : {}),
        });
      return {
        registry: make(),
        host,
        credentials,
        push: (tag) =>
          pushTestImage({
            socketPath: docker!.socketPath,
            baseImage: docker!.baseImage,
            image: `${uri}:${tag}`,
            ...(credentials ? { auth: credentials } : {}),
          }),
        ...(credentials ? { withPassword: (password: string) => make(password) } : {}),
      };
    });
  }
});
