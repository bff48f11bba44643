// The one BullMQ queue of invoices to seal, with the job options every seal job gets.
import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { SEAL_QUEUE, type SealJobData } from './seal-job';

export const SEAL_JOB_OPTIONS: JobsOptions = {
  /** The job-level retry layer (the only one besides the CSC client's bounded wait on 429/503):
   * transient failures (timeouts, 5xx other than 501, an unusable provider answer, a file briefly
   * unreadable) are retried over about five minutes (up to 10, 20, 40, 80, 160 s, less up to 30 %
   * jitter so that a batch's invoices do not all return at once); what job-fate.ts calls permanent
   * fails at once. A re-run of the export re-queues what failed. */
  attempts: 6,
  backoff: { type: 'exponential', delay: 10_000, jitter: 0.3 },
  /** completed jobs stay 90 days so a re-run of the same export deduplicates by job ID */
  removeOnComplete: { age: 90 * 24 * 3600 },
  removeOnFail: false,
};

export function openSealQueue(
  connection: ConnectionOptions,
  prefix: string,
  jobOptions: JobsOptions = SEAL_JOB_OPTIONS,
): Queue<SealJobData> {
  return new Queue<SealJobData>(SEAL_QUEUE, { connection, prefix, defaultJobOptions: jobOptions });
}
