// Every CSV the product writes (exports for fixtures and benchmarks, rejects files, manifests, run
// reports) is made here by csv-stringify, with RFC 4180 quoting: a field holding a comma, a quote or
// any line break is quoted, inner quotes doubled, records end in CRLF. Cells meant for Excel go
// through excelSafe (./excel-cell.ts) first; that is the caller's choice, not this module's.
import { stringify, type Options } from 'csv-stringify/sync';

const OPTIONS: Options = {
  record_delimiter: '\r\n',
  // csv-stringify quotes a field that holds the whole record delimiter; a lone CR or LF would
  // otherwise be written bare and split the record for every reader.
  quoted_match: /[\r\n]/,
};

/** Records as CSV text, each ending in CRLF. */
export function csvRecords(rows: readonly (readonly string[])[]): string {
  return rows.length === 0 ? '' : stringify(rows as string[][], OPTIONS);
}

/** One record as CSV text, ending in CRLF. */
export function csvLine(fields: readonly string[]): string {
  return csvRecords([fields]);
}
