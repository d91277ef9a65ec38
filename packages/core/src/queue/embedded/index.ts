// Filled by the embedded-queue work.
export {};
