// What one queued invoice carries: references (paths, digests) and identity, never PDF bytes or secrets;
// in Redis, less what its job ID says (StoredSealJobData).
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
  /** the PDF to seal, or (rendered) the invoice spool holding its record */
  sourcePath: string;
  /** of the PDF, or of a rendered invoice's record: the invoice data and template it is drawn from */
  sourceSha256: string;
  /** bytes of the PDF, or of the record */
  sourceLength: number;
  /** a rendered invoice (from a data export): where its record lies in the spool at sourcePath */
  rendered?: { offset: number; length: number };
  exportFile: string;
  line: number;
  /** The invoice's facts from its export row, for finance's manifest and run report (absent in jobs
   * queued before they were carried): the customer, whole yen, and the issue date (YYYY-MM-DD). */
  customer?: string;
  amount?: number;
  issueDate?: string;
  /** a rendered invoice's issuer registration number (T and 13 digits) */
  registrationNumber?: string;
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

/**
 * What a seal job stores in Redis: its data less what its job ID already says (tenant, invoice number,
 * source digest), about a quarter of the job's data, for each of a night's million queued invoices.
 * Jobs queued before carry them in full; what they carry wins over the ID.
 */
export type StoredSealJobData = Omit<SealJobData, 'tenant' | 'invoiceNumber' | 'sourceSha256'> &
  Partial<Pick<SealJobData, 'tenant' | 'invoiceNumber' | 'sourceSha256'>>;

export function storedSealJobData(data: SealJobData): StoredSealJobData {
  const { tenant: _tenant, invoiceNumber: _invoice, sourceSha256: _digest, ...rest } = data;
  return rest;
}

/** The job ID's parts (sealJobId), or undefined when it is not one. */
export function parseSealJobId(
  jobId: string,
): Pick<SealJobData, 'tenant' | 'invoiceNumber' | 'sourceSha256'> | undefined {
  const parts = jobId.split('|');
  if (parts.length !== 3 || !/^[0-9a-f]{64}$/.test(parts[2]!)) return undefined;
  return { tenant: parts[0]!, invoiceNumber: parts[1]!, sourceSha256: parts[2]! };
}

/** A stored job's whole data again: what it stored, and the rest from its ID. */
export function sealJobData(jobId: string | undefined, stored: StoredSealJobData): SealJobData {
  if (stored.tenant !== undefined && stored.invoiceNumber !== undefined && stored.sourceSha256 !== undefined)
    return stored as SealJobData;
  const ids = jobId === undefined ? undefined : parseSealJobId(jobId);
  return {
    ...stored,
    tenant: stored.tenant ?? ids?.tenant ?? '',
    invoiceNumber: stored.invoiceNumber ?? ids?.invoiceNumber ?? '',
    sourceSha256: stored.sourceSha256 ?? ids?.sourceSha256 ?? '',
  };
}

export interface QueueConnection {
  connection: ConnectionOptions;
  /** Redis key prefix; tests use their own */
  prefix: string;
}
