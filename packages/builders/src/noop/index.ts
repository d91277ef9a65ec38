export { createNoopBuilder } from './builder.js';
