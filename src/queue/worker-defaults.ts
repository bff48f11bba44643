// Defaults of a worker process, apart from the worker so the CLI can show them without loading BullMQ.

/**
 * Jobs a worker process works on at once, all tenants together. A slow provider is hidden by the jobs
 * that wait for their signatures beside these (DEFAULT_AWAITING_SIGNATURE_PER_SLOT), not by more of
 * these: 10,000 invoices at 300 ms per CSC call sealed 411 and 555/s against 412 and 537/s at none,
 * and 205 and 222/s with no slots lent.
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
 * SQLite page cache (MiB) of each tenant archive a worker process writes to. Appending an invoice's
 * row touches the right edge of each index, not the whole file; SQLite's default for searches (64 MiB)
 * filled as the archive grew and was most of the worker's growth with N.
 */
export const WORKER_ARCHIVE_CACHE_MIB = 8;

/**
 * Node flags a worker process is best started with (NODE_OPTIONS, or node's arguments): a 2 MB
 * semi-space keeps the main thread's young garbage from staying resident. 20,000 invoices, two runs
 * each: worker peak RSS 364-367 MB against 407-415 MB, 1.32-1.42 CPU ms per invoice against 1.32-1.33.
 */
export const WORKER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];

/**
 * Bytes a rendered invoice is charged against DEFAULT_MAX_HELD_MB before it is rendered (its PDF's
 * size is known only then): a base for the page furniture and the font subsets, plus a margin per byte
 * of its record (its lines). Measured: 1 line 29 KB (record 630 B), 10 lines 40 KB (2.2 KB), 60 lines
 * 49 KB (10 KB), 200 lines 72 KB (32 KB); so an invoice is charged about twice its PDF.
 */
export function renderedBytesEstimate(recordLength: number): number {
  const length = Number.isSafeInteger(recordLength) && recordLength > 0 ? recordLength : 0;
  return 96 * 1024 + 8 * length;
}
