// Defaults of a worker process, apart from the worker so the CLI can show them without loading BullMQ.

/**
 * Jobs a worker process holds at once, all tenants together. Enough that provider latency is hidden:
 * an invoice is in hand for prepare + signHash (one call's latency and the batch's wait) + delivery
 * (a few syncs), and at 300 ms per call 128 in hand halved the rate measured at no latency.
 */
export const DEFAULT_CONCURRENCY = 512;

/** Bytes of source PDFs a worker process holds at once (prepare to delivery); large inputs wait. */
export const DEFAULT_MAX_HELD_MB = 256;
