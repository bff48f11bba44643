// What one queued invoice carries: references (paths, digests) and identity, never PDF bytes or secrets.
import type { ConnectionOptions } from 'bullmq';

export const SEAL_QUEUE = 'seal';

/** Each tenant's invoices wait in a queue of their own, so that one tenant can be paused while the
 * others seal, and a tenant with 500,000 invoices queued does not starve one with 100. */
export function sealQueueName(tenant: string): string {
  return `${SEAL_QUEUE}.${tenant}`;
}
export const DEFAULT_PREFIX = 'sealer';

export interface SealJobData {
  tenant: string;
  jobName: string;
  runId: string;
  /** YYYY-MM-DD in the job's time zone when the run was produced: the outbox folder */
  runDate: string;
  invoiceNumber: string;
  sourcePath: string;
  sourceSha256: string;
  sourceLength: number;
  exportFile: string;
  line: number;
  /** The invoice's facts from its export row, for finance's manifest and run report (absent in jobs
   * queued before they were carried): the customer, whole yen, and the issue date (YYYY-MM-DD). */
  customer?: string;
  amount?: number;
  issueDate?: string;
  /** SCAL2 under an approval: the signing time of the prepared document whose hash waits for an
   * approval, so that preparing it again gives the same hash (ISO) */
  signingTime?: string;
  /** ...and that hash (hex), to forget once the invoice is sealed or failed */
  pendingHash?: string;
}

export interface SealJobResult {
  status: 'sealed' | 'already-sealed';
  file: string;
  sealedSha256?: string;
  /** the PAdES level reached, when this job sealed it */
  level?: string;
}

/**
 * Deterministic: the same invoice with the same PDF bytes is the same job, so re-runs enqueue nothing.
 * DESIGN.md writes it tenant:invoice:digest; BullMQ reserves ':' in custom IDs (tolerated today only for
 * legacy repeatable jobs), so the parts are joined with '|', which neither a tenant nor an invoice
 * number may contain.
 */
export function sealJobId(data: Pick<SealJobData, 'tenant' | 'invoiceNumber' | 'sourceSha256'>): string {
  return `${data.tenant}|${data.invoiceNumber}|${data.sourceSha256}`;
}

export interface QueueConnection {
  connection: ConnectionOptions;
  /** Redis key prefix; tests use their own */
  prefix: string;
}
