// The searchable archive of sealed invoices (電子帳簿保存法: search by 取引年月日, 取引金額, 取引先): one
// row per sealed file, written by the worker as it delivers, read by `sealer archive` and its page.
// Storage is behind this interface: embedded SQLite by default, PostgreSQL when several hosts share it.

export interface ArchivedInvoice {
  tenant: string;
  invoiceNumber: string;
  /** 取引先 as the export names it */
  customer: string;
  /** 取引金額, whole yen (negative for a credit note) */
  amount: number;
  /** 取引年月日, YYYY-MM-DD; absent when the export has no issue-date column */
  issueDate?: string;
  /** the issuer's 登録番号 (T and 13 digits) of an invoice rendered from a data export; an update
   * without one (a renewal, a rebuild from an older manifest) keeps the one recorded */
  registrationNumber?: string;
  /** the sealed PDF, absolute path */
  file: string;
  sealedSha256: string;
  sourceSha256: string;
  /** B-B, B-T, B-LT, B-LTA: a renewal raises it */
  level: string;
  /** the seal's signing time, ISO UTC */
  sealedAt: string;
  certificateSerial: string;
  /** the signature timestamp's genTime, ISO UTC, for B-T and above */
  timestampAt?: string;
  job: string;
  runId: string;
}

export interface ArchiveQuery {
  tenant: string;
  /** inclusive, YYYY-MM-DD */
  issueDateFrom?: string;
  issueDateTo?: string;
  /** inclusive, whole yen */
  amountMin?: number;
  amountMax?: number;
  /** part of the customer's name; width and case folded (NFKC, lower case) */
  customer?: string;
  /** default 100, at most 1000 */
  limit?: number;
  offset?: number;
}

export interface ArchiveSearchResult {
  rows: ArchivedInvoice[];
  /** rows matching in all (may be capped: see totalCapped) */
  total: number;
  /** true when total stopped counting at a cap */
  totalCapped?: boolean;
}

export interface ArchiveIndex {
  /** Adds or updates (same tenant, invoice and source digest: a renewal) one sealed invoice. */
  record(entry: ArchivedInvoice): Promise<void>;
  /**
   * Added with the storages: records many entries in one transaction, all or none (a bulk load, a
   * rebuild). Optional: a caller without it records one by one.
   */
  recordMany?(entries: readonly ArchivedInvoice[]): Promise<void>;
  search(query: ArchiveQuery): Promise<ArchiveSearchResult>;
  /** Every archived version of one invoice number (usually one), newest first. */
  find(tenant: string, invoiceNumber: string): Promise<ArchivedInvoice[]>;
  close(): Promise<void>;
}
