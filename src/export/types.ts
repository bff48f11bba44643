// Public types of the export reader: how a job maps an export's columns, what a read row becomes
// (an accepted invoice or a rejected row) and the summary that closes a read.

/** How the export file is decoded. `auto`: UTF-8 BOM → utf8; else valid UTF-8 → utf8; else cp932. */
export type ExportEncoding = 'auto' | 'utf8' | 'cp932';

/** Logical field → column header exactly as the export names it (header cells are trimmed). */
export interface ColumnMapping {
  invoiceNumber: string;
  customerName: string;
  amount: string;
  pdfPath: string;
  /** Optional; when mapped, every row must carry a valid date. */
  issueDate?: string;
}

export interface InvoiceRecord {
  /** Line of the export where the row starts (header = line 1). */
  line: number;
  invoiceNumber: string;
  customerName: string;
  /** Whole yen. */
  amount: number;
  /** YYYY-MM-DD. */
  issueDate?: string;
  /** Absolute real path (symlinks resolved), inside the export's folder. */
  pdfPath: string;
  /** The path as the export gave it, relative to the export's folder, with `/` separators. */
  pdfRelativePath: string;
}

export interface RejectedRow {
  line: number;
  invoiceNumber?: string;
  reason: string;
}

export type ExportRow = { ok: true; invoice: InvoiceRecord } | { ok: false; rejected: RejectedRow };

export interface ReadExportOptions {
  mapping: ColumnMapping;
  /** Default `auto`. */
  encoding?: ExportEncoding;
}

export interface ExportSummary {
  /** Absolute path of the export read. */
  file: string;
  encoding: 'utf8' | 'cp932';
  /** Data rows read (blank lines and all-blank rows are not rows); always accepted + rejected. */
  rows: number;
  accepted: number;
  rejected: number;
  /** Bytes read: the file's size when the read began (a writer's later appends are not read). */
  bytes: number;
}
