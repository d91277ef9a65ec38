/**
 * An embedder's process, as the README shows one (`node --import tsx keep-alive.ts <stateDir>`): start an
 * agent on the embedded queue and nothing else. Prints `started`, stops the agent on SIGUSR2 (a signal
 * listener does not hold the process open), prints `stopped`, and never calls process.exit.
 */
import { createScriptedRunner } from '@launch/testkit';
import { createEmbeddedQueue } from '../../queue/embedded/index.js';
import { createAgent } from '../create-agent.js';

const queue = createEmbeddedQueue({ stateDir: process.argv[2]!, fsync: false });
const agent = createAgent({ source: queue, queues: ['default'], runners: [createScriptedRunner({})], defaultResource: 'scripted', env: {} });
process.on('SIGUSR2', () => {
  void agent.stop('asked by the test').then(async () => {
    await queue.close();
    process.stdout.write('stopped\n');
  });
});
await agent.start();
process.stdout.write('started\n');
