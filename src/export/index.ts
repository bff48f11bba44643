// The export part: reads core-system invoice exports (UTF-8 or CP932 CSV) into validated invoice
// records and rejected rows, and writes rejects files. It knows nothing of queues.
export type {
  ColumnMapping,
  ExportEncoding,
  ExportRow,
  ExportSummary,
  InvoiceRecord,
  ReadExportOptions,
  RejectedRow,
} from './types';
export { ExportError } from './export-error';
export { readExport } from './read-export';
export { readRejectsFile, RejectsWriter } from './rejects-writer';
export { writeExportCsv } from './csv-write';
export { invoiceNumberFold, invoiceNumberProblem, INVOICE_NUMBER_MAX_LENGTH } from '../common/invoice-number';
export {
  exportReadiness,
  exportSnapshot,
  markerFileOf,
  sameSnapshot,
  type ExportReadiness,
  type ExportReadyRule,
  type ExportSnapshot,
} from './ready';
// Data exports (header and detail rows of qualified invoices), grouped, validated and computed here.
export {
  readDataExport,
  type DataColumnMapping,
  type DataExportItem,
  type DataExportLayout,
  type DataExportStats,
  type DataExportSummary,
  type RejectedDataRow,
} from './qualified/read-data-export';
export {
  validateInvoice,
  type ValidateInvoiceOptions,
  type ValidateInvoiceResult,
} from './qualified/validate-invoice';
export type {
  InvoiceProblem,
  InvoiceTotals,
  QualifiedInvoice,
  QualifiedInvoiceLine,
  RateTotal,
  TaxRules,
} from './qualified/types';
