// An "agent" that pops one item and then hangs before acknowledging it, so a test can SIGKILL it
// between pop and ack. Run with tsx from the repository root: baseUrl apiKey entity queue.
import { createWandbQueueSource } from '../source.js';

const [baseUrl, apiKey, entity, queue] = process.argv.slice(2) as [string, string, string, string];
const source = createWandbQueueSource({ baseUrl, apiKey, entity, env: {} });
const { id } = await source.register({ queues: [queue], hostname: 'doomed', version: 'test', config: {} });
for (;;) {
  const item = await source.pop(queue, id);
  if (item) {
    process.stdout.write(`popped ${item.id}\n`);
    break;
  }
  await new Promise((r) => setTimeout(r, 50));
}
setInterval(() => {}, 60_000); // hang until killed
