export { createAgent } from './create-agent.js';
export { fillMacros, macroVars } from './macros.js';
export { wandbRunEnv, chunkedEnv, readChunkedEnv, MAX_ENV_VALUE_LENGTH } from './run-env.js';
export { generateRunId } from './job.js';
