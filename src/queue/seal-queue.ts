// The one BullMQ queue of invoices to seal, with the job options every seal job gets.
import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { SEAL_QUEUE, type SealJobData } from './seal-job';

export const SEAL_JOB_OPTIONS: JobsOptions = {
  /** provider hiccups are retried; inputs that cannot be sealed fail at once (UnrecoverableError) */
  attempts: 3,
  backoff: { type: 'exponential', delay: 2000 },
  /** completed jobs stay 90 days so a re-run of the same export deduplicates by job ID */
  removeOnComplete: { age: 90 * 24 * 3600 },
  removeOnFail: false,
};

export function openSealQueue(connection: ConnectionOptions, prefix: string): Queue<SealJobData> {
  return new Queue<SealJobData>(SEAL_QUEUE, { connection, prefix, defaultJobOptions: SEAL_JOB_OPTIONS });
}
