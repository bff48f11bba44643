// A rendered invoice's source: one line of an invoice spool (JSONL), written by the producer when it
// reads a data export, read back in a prepare thread and rendered there. The line's bytes are what the
// job's sourceSha256 names, as a PDF export's job names its PDF: the same invoice data in the same
// template is the same job, and a spool line changed since enqueue is refused like a changed PDF.
import { PdfError, type InvoiceDocument, type InvoiceTemplate } from '../pdf';

export const INVOICE_RECORD_VERSION = 1;

/** The template as a record carries it: the logo by digest (its bytes are read in the thread). */
export type RecordTemplate = Omit<InvoiceTemplate, 'logo'> & { logoSha256?: string };

export interface InvoiceRecord {
  v: typeof INVOICE_RECORD_VERSION;
  document: InvoiceDocument;
  template: RecordTemplate;
}

/** Where a job's record lies in its spool (the job's sourcePath). */
export interface RecordLocation {
  offset: number;
  length: number;
}

/** Most bytes one record may have: an invoice of thousands of lines, not a file. */
export const MAX_RECORD_BYTES = 4 * 1024 * 1024;

/**
 * The record's bytes: JSON of objects built with their keys in a fixed order (the producer builds them
 * field by field), so the same data always gives the same bytes. No newline inside (JSON escapes it).
 */
export function encodeInvoiceRecord(record: InvoiceRecord): Buffer {
  return Buffer.from(JSON.stringify(record), 'utf8');
}

/** Parses a record read back (its digest already checked); a record of another shape is a PdfError. */
export function decodeInvoiceRecord(bytes: Uint8Array, where: string): InvoiceRecord {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
  } catch (err) {
    throw new PdfError(`${where}: the invoice record is not JSON (${(err as Error).message})`);
  }
  const record = value as Partial<InvoiceRecord> | null;
  if (record === null || typeof record !== 'object' || record.v !== INVOICE_RECORD_VERSION) {
    throw new PdfError(
      `${where}: not an invoice record of version ${INVOICE_RECORD_VERSION} (written by another version?)`,
    );
  }
  if (typeof record.document !== 'object' || record.document === null) {
    throw new PdfError(`${where}: the invoice record has no document`);
  }
  if (typeof record.template !== 'object' || record.template === null) {
    throw new PdfError(`${where}: the invoice record has no template`);
  }
  return record as InvoiceRecord;
}
