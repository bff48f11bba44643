// One archived invoice as both storages return it (the same column names), and back to ArchivedInvoice.
import type { ArchivedInvoice } from './archive-index';

export interface InvoiceRow {
  tenant: string;
  invoice_number: string;
  customer: string;
  /** SQLite gives a number; PostgreSQL's bigint comes as text */
  amount: number | string;
  issue_date: string | null;
  registration_number: string | null;
  file: string;
  sealed_sha256: string;
  source_sha256: string;
  level: string;
  sealed_at: string;
  certificate_serial: string;
  timestamp_at: string | null;
  job: string;
  run_id: string;
}

export function toInvoice(row: InvoiceRow): ArchivedInvoice {
  const entry: ArchivedInvoice = {
    tenant: row.tenant,
    invoiceNumber: row.invoice_number,
    customer: row.customer,
    amount: Number(row.amount),
    file: row.file,
    sealedSha256: row.sealed_sha256,
    sourceSha256: row.source_sha256,
    level: row.level,
    sealedAt: row.sealed_at,
    certificateSerial: row.certificate_serial,
    job: row.job,
    runId: row.run_id,
  };
  if (row.issue_date !== null) entry.issueDate = row.issue_date;
  if (row.registration_number !== null) entry.registrationNumber = row.registration_number;
  if (row.timestamp_at !== null) entry.timestampAt = row.timestamp_at;
  return entry;
}
