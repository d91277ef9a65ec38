import { processIo } from './io.js';
import { main } from './main.js';

// Exit explicitly: a job or watcher left behind by a library must not keep the process alive.
// stdout and stderr are synchronous for files and pipes on Linux, so nothing written is lost.
void main(process.argv.slice(2), processIo()).then((code) => process.exit(code));
