// Public types of the data-export reader (issue 11): how the export's files are laid out, how its
// columns map to the fields of a qualified invoice, what a read yields and the summary that closes it.
import type { ExportEncoding } from '../types';
import type { RawInvoiceRows } from './types';

/** The fields of an invoice's header row. */
export const HEADER_FIELDS = [
  'invoiceNumber',
  'issuerName',
  'registrationNumber',
  'issueDate',
  'transactionDate',
  'periodFrom',
  'periodTo',
  'recipientName',
  'dueDate',
  'payee',
  'subtotal',
  'tax',
  'total',
] as const;
export type HeaderField = (typeof HEADER_FIELDS)[number];

/** The fields of a detail (line item) row; invoiceNumber is the key that joins it to its header. */
export const DETAIL_FIELDS = [
  'invoiceNumber',
  'description',
  'quantity',
  'unitPrice',
  'taxCategory',
  'transactionDate',
  'unit',
] as const;
export type DetailField = (typeof DETAIL_FIELDS)[number];

/** Logical field → column header exactly as the export names it (header cells are trimmed). */
export type HeaderColumnMapping = { invoiceNumber: string } & Partial<Record<HeaderField, string>>;

/**
 * invoiceNumber may be left out: it is then the header mapping's column (the one column of the
 * record-type layout; in the two-files layout, a detail file whose key column has the same header).
 */
export type DetailColumnMapping = {
  description: string;
  quantity: string;
  unitPrice: string;
  taxCategory: string;
} & Partial<Record<DetailField, string>>;

export interface DataColumnMapping {
  header: HeaderColumnMapping;
  detail: DetailColumnMapping;
}

/**
 * How header and detail rows are told apart.
 * - `record-type`: one CSV; the value of `column` says the row's type: `header` (e.g. 'H') or
 *   `detail` (e.g. 'D'), compared after trimming; any other value rejects the row.
 * - `two-files`: the main file holds header rows only, `details` detail rows only, joined by invoice
 *   number. A relative `details` path is taken from the main file's folder.
 */
export type DataExportLayout =
  | { kind: 'record-type'; column: string; header: string; detail: string }
  | { kind: 'two-files'; details: string };

export interface ReadDataExportOptions {
  layout: DataExportLayout;
  mapping: DataColumnMapping;
  /** Of every file of the export, each resolved on its own under `auto`. Default `auto`. */
  encoding?: ExportEncoding;
  /**
   * Rows held in memory for sorting before they are written to a temporary run file; also the most
   * rows the reader holds at once bar the invoice being yielded and one row per run. Default 50,000.
   */
  maxRowsInMemory?: number;
  /** Where the reader makes its temporary folder (removed at the end, on error and on early return). Default os.tmpdir(). */
  tmpDir?: string;
  /**
   * Filled as the read goes, for a caller that wants the figures even when it stops early (the
   * summary is only returned at the end). Reset at the read's start.
   */
  stats?: DataExportStats;
}

/** A row that is not part of any invoice: no invoice number, an unknown record type, a wrong field count. */
export interface RejectedDataRow {
  /** absolute path of the file holding the row */
  file: string;
  /** line where the row starts (header row = line 1) */
  line: number;
  invoiceNumber?: string;
  reason: string;
}

/** Each invoice once with all its rows, or a rejected row. */
export type DataExportItem = { ok: true; invoice: RawInvoiceRows } | { ok: false; rejected: RejectedDataRow };

export interface DataExportFileSummary {
  /** absolute path */
  file: string;
  encoding: 'utf8' | 'cp932';
  /** data rows read (blank lines and all-blank rows are not rows), rejected ones included */
  rows: number;
  rejected: number;
}

/** How the grouping went: the memory it held and the runs it spilled. */
export interface DataExportStats {
  /** temporary run files written (0 when everything fitted in memory) */
  spilledRuns: number;
  /** the most rows the sort buffer held at once; never above maxRowsInMemory */
  largestBuffer: number;
  /** the most rows of one invoice held at once (its header(s) and details) */
  largestInvoice: number;
  /** header rows read so far, rejected ones aside: once the first invoice is yielded, every row has
   * been read, and this is the invoices to come (plus any second header of one invoice) */
  headerRows: number;
}

export interface DataExportSummary extends DataExportStats {
  /** the main file first, then the detail file of the two-files layout */
  files: DataExportFileSummary[];
  /** invoices yielded */
  invoices: number;
  /** rows yielded as rejected, all files together */
  rejected: number;
  /** data rows of all files; always the rows of the invoices yielded + rejected */
  rows: number;
  maxRowsInMemory: number;
}
