// Defaults of a worker process, apart from the worker so the CLI can show them without loading BullMQ.

/**
 * Jobs a worker process holds at once, all tenants together. More hides a slow provider (at 300 ms per
 * CSC call, 3,000 invoices: 128 in hand sealed 153/s against 293/s at no latency, 512 lost 20 %, 1,024
 * lost 11 %), but against a credential whose `multisign` is small, invoices held beyond what a SAD
 * covers only wait for the next one, and they hold back authorising ahead: with multisign 500, 512 in
 * hand sealed 22/s with 4 authorisations and 300 signatures unused, 128 sealed 32/s with 3 and none.
 * So the default stays at 128; `--concurrency` raises it where the provider is slow and multisign large.
 */
export const DEFAULT_CONCURRENCY = 128;

/**
 * Jobs a worker process may hold beyond its concurrency while they wait for their signature (their
 * slots lent to the next jobs), per slot of concurrency: what hides a slow provider. BullMQ fetches a
 * worker's jobs one at a time until it holds them all before it starts any, so this is not unbounded.
 */
export const DEFAULT_AWAITING_SIGNATURE_PER_SLOT = 8;

/** Bytes of source PDFs a worker process holds at once (prepare to delivery); large inputs wait. */
export const DEFAULT_MAX_HELD_MB = 256;

/**
 * Node flags a worker process is best started with (NODE_OPTIONS, or node's arguments): a 2 MB
 * semi-space keeps the main thread's young garbage from staying resident. 20,000 invoices, two runs
 * each: worker peak RSS 364-367 MB against 407-415 MB, 1.32-1.42 CPU ms per invoice against 1.32-1.33.
 */
export const WORKER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
