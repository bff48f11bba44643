// The one BullMQ queue of invoices to seal, with the job options every seal job gets.
import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { SEAL_QUEUE, type SealJobData } from './seal-job';

export const SEAL_JOB_OPTIONS: JobsOptions = {
  /** provider hiccups (timeouts, 429, 5xx) are retried over about five minutes (10, 20, 40, 80,
   * 160 s); refusals and inputs that cannot be sealed fail at once (UnrecoverableError). A re-run of
   * the export re-queues what failed. */
  attempts: 6,
  backoff: { type: 'exponential', delay: 10_000 },
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
