// Reading a data export (issue 11: header and detail rows, not PDFs) into the rows of each invoice,
// whatever their order in the file(s), with bounded memory: rows are sorted by invoice number through
// an external merge sort (./external-sort.ts) and consecutive rows of one number make one invoice.
// File-level failures throw ExportError; a row that belongs to no invoice becomes a rejected row.
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { ExportError } from '../export-error';
import { locateColumns, openCsv, type CsvRecord, type OpenCsv } from './csv-records';
import {
  DETAIL_FIELDS,
  HEADER_FIELDS,
  type DataColumnMapping,
  type DataExportItem,
  type DataExportStats,
  type DataExportSummary,
  type DetailField,
  type HeaderField,
  type ReadDataExportOptions,
  type RejectedDataRow,
} from './data-export-types';
import { ExternalSorter, type RunCodec } from './external-sort';
import type { RawInvoiceRows, RawRow } from './types';

export type {
  DataColumnMapping,
  DataExportItem,
  DataExportLayout,
  DataExportStats,
  DataExportSummary,
  DetailColumnMapping,
  HeaderColumnMapping,
  ReadDataExportOptions,
  RejectedDataRow,
} from './data-export-types';

export const DEFAULT_MAX_ROWS_IN_MEMORY = 50_000;

/**
 * Natural order, as the run report orders invoices (src/outbox/run-report.ts): digit runs compare as
 * numbers, so INV-2 comes before INV-10. A collator may call distinct strings equal (canonically
 * equivalent forms); code-unit order breaks those ties, so that equal means identical and one
 * invoice's rows are always consecutive. Numbers that differ only in letter case sort next to each other.
 */
const natural = new Intl.Collator('en', { numeric: true, sensitivity: 'variant' });

export function compareInvoiceNumbers(a: string, b: string): number {
  if (a === b) return 0;
  return natural.compare(a, b) || (a < b ? -1 : 1);
}

/** One data row on its way through the sort: compact, since up to maxRowsInMemory are held. */
interface SortRow {
  /** invoice number */
  n: string;
  /** index of the file in the export (0 = main file) */
  f: number;
  /** line */
  l: number;
  /** a header row (else a detail row) */
  h: boolean;
  /** the cells of the mapped fields of its kind, in the order of that kind's field list */
  v: string[];
}

function compareRows(a: SortRow, b: SortRow): number {
  return compareInvoiceNumbers(a.n, b.n) || a.f - b.f || a.l - b.l;
}

const codec: RunCodec<SortRow> = {
  encode: (r) => JSON.stringify([r.n, r.f, r.l, r.h ? 1 : 0, r.v]),
  decode: (line) => {
    const [n, f, l, h, v] = JSON.parse(line) as [string, number, number, 0 | 1, string[]];
    return { n, f, l, h: h === 1, v };
  },
};

const column = z.string().trim().min(1);
const mappingSchema = z.object({
  header: z.object({
    invoiceNumber: column,
    ...Object.fromEntries(
      HEADER_FIELDS.filter((f) => f !== 'invoiceNumber').map((f) => [f, column.optional()]),
    ),
  }),
  detail: z.object({
    invoiceNumber: column.optional(),
    description: column,
    quantity: column,
    unitPrice: column,
    taxCategory: column,
    transactionDate: column.optional(),
    unit: column.optional(),
  }),
});

const layoutSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('record-type'), column, header: column, detail: column }),
  z.object({ kind: z.literal('two-files'), details: column }),
]);

function checkOptions(options: ReadDataExportOptions, file: string): void {
  const problems: string[] = [];
  const mapping = mappingSchema.safeParse(options.mapping);
  if (!mapping.success) {
    const fields = [...new Set(mapping.error.issues.map((i) => i.path.join('.')))];
    problems.push(`the column mapping has no column header for ${fields.join(', ')}`);
  }
  const layout = layoutSchema.safeParse(options.layout);
  if (!layout.success) problems.push(`the layout is not valid (${layout.error.issues[0]?.message ?? ''})`);
  else if (layout.data.kind === 'record-type' && layout.data.header === layout.data.detail) {
    problems.push(`the layout's header and detail record types are both "${layout.data.header}"`);
  }
  const max = options.maxRowsInMemory;
  if (max !== undefined && (!Number.isSafeInteger(max) || max < 1)) {
    problems.push(`maxRowsInMemory ${max} is not a positive count`);
  }
  if (problems.length > 0) {
    throw new ExportError(`cannot read data export ${file}: ${problems.join('; ')}`, { file });
  }
}

/** The mapped fields of one kind of row, in field-list order, with their column headers. */
function mappedFields<F extends string>(
  fields: readonly F[],
  mapping: Partial<Record<F, string>>,
): (readonly [F, string])[] {
  return fields.flatMap((f) => {
    const name = mapping[f]?.trim();
    return name ? [[f, name] as const] : [];
  });
}

/** How the rows of one file of the export are read. */
interface FileReader {
  csv: OpenCsv;
  index: number;
  /** columns of the header fields, when the file holds header rows */
  headerColumns?: number[];
  /** columns of the detail fields, when the file holds detail rows */
  detailColumns?: number[];
  /** the record-type column, in the record-type layout */
  typeColumn?: number;
  rows: number;
  rejected: number;
}

function emptyStats(): DataExportStats {
  return { spilledRuns: 0, largestBuffer: 0, largestInvoice: 0, headerRows: 0 };
}

/**
 * Streams the export and yields each invoice once with its header and all its details, and every
 * rejected row; the generator's return value is the summary. Rejected rows come first, in file
 * order, as they are read (the grouping needs every row before its first invoice); then invoices, in
 * natural invoice-number order (see compareInvoiceNumbers), each invoice's rows in file order
 * (file, then line). An invoice may have no header (only details carry its number) or several
 * (extraHeaders): judging that is validation's business, not the reader's.
 *
 * Throws ExportError for file-level failures, before the first row where it can (an invalid option,
 * an unreadable, empty, cut or wrongly encoded file, a mapped column missing from a file's header),
 * or part-way (a quote never closed, a row over 1 MB, a temporary run that cannot be written).
 * Temporary files are removed at the end, on a failure, and when the consumer stops early.
 */
export async function* readDataExport(
  file: string,
  options: ReadDataExportOptions,
): AsyncGenerator<DataExportItem, DataExportSummary, undefined> {
  const main = path.resolve(file);
  checkOptions(options, main);
  const mapping: DataColumnMapping = options.mapping;
  const { layout } = options;
  const maxRowsInMemory = options.maxRowsInMemory ?? DEFAULT_MAX_ROWS_IN_MEMORY;
  const stats = options.stats ?? emptyStats();
  Object.assign(stats, emptyStats());

  const headerFields = mappedFields<HeaderField>(HEADER_FIELDS, mapping.header);
  const detailFields = mappedFields<DetailField>(DETAIL_FIELDS, {
    ...mapping.detail,
    invoiceNumber: mapping.detail.invoiceNumber ?? mapping.header.invoiceNumber,
  });
  const headerKey = headerFields.findIndex(([f]) => f === 'invoiceNumber');
  const detailKey = detailFields.findIndex(([f]) => f === 'invoiceNumber');

  // Every file is opened and its columns located before the first row is read, so that a missing
  // column in the detail file fails the export before any row is yielded.
  const readers: FileReader[] = [];
  const sorter = new ExternalSorter<SortRow>({
    compare: compareRows,
    codec,
    maxInMemory: maxRowsInMemory,
    tmpParent: options.tmpDir ?? os.tmpdir(),
    onSpill: (buffered) => {
      stats.spilledRuns++;
      stats.largestBuffer = Math.max(stats.largestBuffer, buffered);
    },
  });
  const spill = async (file: string) => {
    try {
      await sorter.spill();
    } catch (err) {
      throw tmpError(err, file, sorter.tmpDir ?? options.tmpDir ?? os.tmpdir());
    }
  };

  try {
    const encoding = options.encoding ?? 'auto';
    const indexes = (csv: OpenCsv, wanted: (readonly [string, string])[]) => {
      const at = locateColumns(csv, wanted);
      return wanted.map(([f]) => at.get(f)!);
    };
    if (layout.kind === 'record-type') {
      const csv = await openCsv(main, encoding);
      const reader: FileReader = { csv, index: 0, rows: 0, rejected: 0 };
      readers.push(reader);
      const typeName = layout.column.trim();
      const at = locateColumns(csv, [
        ['recordType', typeName],
        ...headerFields.map(([f, n]) => [`header.${f}`, n] as const),
        ...detailFields.map(([f, n]) => [`detail.${f}`, n] as const),
      ]);
      reader.typeColumn = at.get('recordType')!;
      reader.headerColumns = headerFields.map(([f]) => at.get(`header.${f}`)!);
      reader.detailColumns = detailFields.map(([f]) => at.get(`detail.${f}`)!);
    } else {
      const details = path.resolve(path.dirname(main), layout.details);
      const headerCsv = await openCsv(main, encoding);
      readers.push({ csv: headerCsv, index: 0, rows: 0, rejected: 0 });
      readers[0]!.headerColumns = indexes(headerCsv, headerFields);
      const detailCsv = await openCsv(details, encoding);
      readers.push({ csv: detailCsv, index: 1, rows: 0, rejected: 0 });
      readers[1]!.detailColumns = indexes(detailCsv, detailFields);
    }

    // Phase 1: every row into the sort; rejected rows out at once.
    const recordTypes =
      layout.kind === 'record-type'
        ? { header: layout.header.trim(), detail: layout.detail.trim(), column: layout.column.trim() }
        : undefined;
    /** The row for the sort, or why it is rejected. */
    const sortRow = (reader: FileReader, { fields, line }: CsvRecord): SortRow | RejectedDataRow => {
      const { file } = reader.csv;
      const width = reader.csv.header.length;
      let isHeader = reader.headerColumns !== undefined;
      if (recordTypes !== undefined) {
        const type = (fields[reader.typeColumn!] ?? '').trim();
        if (type !== recordTypes.header && type !== recordTypes.detail) {
          const n = (fields[reader.headerColumns![headerKey]!] ?? '').trim();
          return rejectedRow(
            file,
            line,
            n,
            `record type ${JSON.stringify(type)} in column "${recordTypes.column}" is neither ` +
              `"${recordTypes.header}" (header) nor "${recordTypes.detail}" (detail)`,
          );
        }
        isHeader = type === recordTypes.header;
      }
      const columns = isHeader ? reader.headerColumns! : reader.detailColumns!;
      const values = columns.map((c) => (fields[c] ?? '').trim());
      const n = values[isHeader ? headerKey : detailKey]!;
      if (fields.length !== width) {
        return rejectedRow(file, line, n, `has ${fields.length} fields where the header has ${width}`);
      }
      if (n === '') {
        const name = (isHeader ? headerFields[headerKey]! : detailFields[detailKey]!)[1];
        return rejectedRow(file, line, n, `the invoice number (column "${name}") is empty`);
      }
      return { n, f: reader.index, l: line, h: isHeader, v: values };
    };
    for (const reader of readers) {
      for await (const batch of reader.csv.batches) {
        for (const record of batch) {
          reader.rows++;
          const row = sortRow(reader, record);
          if ('reason' in row) {
            reader.rejected++;
            yield { ok: false, rejected: row };
            continue;
          }
          if (sorter.full) await spill(reader.csv.file);
          if (row.h) stats.headerRows++;
          sorter.push(row);
        }
        stats.largestBuffer = Math.max(stats.largestBuffer, sorter.buffered);
      }
    }

    // Phase 2: the rows in invoice order; consecutive rows of one number are one invoice.
    const files = readers.map((r) => r.csv.file);
    const toRaw = (row: SortRow): RawRow => {
      const names = row.h ? headerFields : detailFields;
      const cells: Record<string, string> = {};
      names.forEach(([f], i) => (cells[f] = row.v[i]!));
      return { file: files[row.f]!, line: row.l, cells };
    };
    let current: RawInvoiceRows | undefined;
    let held = 0;
    let grouped = 0;
    let sorted = 0;
    let invoices = 0;
    const finish = (group: RawInvoiceRows): DataExportItem => {
      invoices++;
      grouped += held;
      stats.largestInvoice = Math.max(stats.largestInvoice, held);
      return { ok: true, invoice: group };
    };
    const batches = sorter.sorted();
    for (;;) {
      let step: IteratorResult<SortRow[]>;
      try {
        step = await batches.next();
      } catch (err) {
        throw tmpError(err, main, sorter.tmpDir ?? options.tmpDir ?? os.tmpdir());
      }
      if (step.done) break;
      for (const row of step.value) {
        sorted++;
        if (current !== undefined && current.invoiceNumber !== row.n) {
          const done = current;
          current = undefined;
          yield finish(done);
        }
        if (current === undefined) {
          current = { invoiceNumber: row.n, details: [] };
          held = 0;
        }
        held++;
        const raw = toRaw(row);
        if (!row.h) current.details.push(raw);
        else if (current.header === undefined) current.header = raw;
        else (current.extraHeaders ??= []).push(raw);
      }
    }
    if (current !== undefined) yield finish(current);

    // Boundary check: rows read = rows grouped + rejected, and the sort gave back what it was given.
    const read = readers.reduce((n, r) => n + r.rows, 0);
    const rejected = readers.reduce((n, r) => n + r.rejected, 0);
    if (sorted !== sorter.count || read !== grouped + rejected) {
      throw new ExportError(
        `data export ${main}: counts do not add up: ${read} rows read, ${grouped} grouped into ` +
          `${invoices} invoices + ${rejected} rejected; the sort took ${sorter.count} and gave back ${sorted}`,
        { file: main },
      );
    }
    try {
      await sorter.dispose();
    } catch (err) {
      throw tmpError(err, main, sorter.tmpDir ?? '');
    }
    return {
      files: readers.map((r) => ({
        file: r.csv.file,
        encoding: r.csv.encoding,
        rows: r.rows,
        rejected: r.rejected,
      })),
      invoices,
      rejected,
      rows: read,
      maxRowsInMemory,
      ...stats,
    };
  } finally {
    for (const reader of readers) reader.csv.close();
    // On a failure or an early stop nothing is left to report a cleanup failure to, and the
    // failure that got us here matters more; the happy path disposed above and reports its own.
    await sorter.dispose().catch(() => undefined);
  }
}

function rejectedRow(file: string, line: number, invoiceNumber: string, reason: string): RejectedDataRow {
  return invoiceNumber === '' ? { file, line, reason } : { file, line, invoiceNumber, reason };
}

function tmpError(err: unknown, file: string, dir: string): ExportError {
  if (err instanceof ExportError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return new ExportError(
    `data export ${file}: the temporary sort files in ${dir} failed${code ? ` (${code})` : ''}: ` +
      `${err instanceof Error ? err.message : String(err)}`,
    { file, cause: err },
  );
}
