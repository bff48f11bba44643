// Reading one core-system export as a stream of rows: decode, parse (csv-parse), locate the mapped
// columns, validate each row and its PDF, and close with a summary whose counts are checked.
// File-level failures throw ExportError; a bad row only ever becomes a rejected row.
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream';
import { parse, type CsvError, type Info } from 'csv-parse';
import { z } from 'zod';
import { ExportDecoder, resolveEncoding, unreadable } from './decode';
import { ExportError } from './export-error';
import { PdfPathResolver, type PdfPathResult } from './pdf-path';
import { rowSchema } from './row-schema';
import type { ColumnMapping, ExportRow, ExportSummary, ReadExportOptions } from './types';

type Field = keyof ColumnMapping;
const FIELDS: readonly Field[] = ['invoiceNumber', 'customerName', 'amount', 'issueDate', 'pdfPath'];

/**
 * A row longer than this (UTF-8 bytes, as csv-parse counts) fails the file: with real invoice rows it
 * can only be a quote left open, which would otherwise pull the rest of the file into memory.
 */
const MAX_RECORD_BYTES = 1_000_000;

const mappingSchema = z.object({
  invoiceNumber: z.string().trim().min(1),
  customerName: z.string().trim().min(1),
  amount: z.string().trim().min(1),
  pdfPath: z.string().trim().min(1),
  issueDate: z.string().trim().min(1).optional(),
});

type Columns = Partial<Record<Field, number>>;

interface ParsedRecord {
  record: string[];
  info: Info;
}

function countNewlines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

function checkMapping(mapping: ColumnMapping, file: string): ColumnMapping {
  const result = mappingSchema.safeParse(mapping);
  if (result.success) return result.data;
  const fields = [...new Set(result.error.issues.map((i) => String(i.path[0])))];
  throw new ExportError(`column mapping for export ${file} has no column header for ${fields.join(', ')}`, {
    file,
    cause: result.error,
  });
}

function locateColumns(
  header: string[],
  mapping: ColumnMapping,
  file: string,
  line: number,
  encoding: string,
): Columns {
  const columns: Columns = {};
  const missing: [Field, string][] = [];
  for (const field of FIELDS) {
    const name = mapping[field];
    if (name === undefined) continue;
    const at = header.flatMap((h, i) => (h === name ? [i] : []));
    if (at.length === 0) missing.push([field, name]);
    else if (at.length > 1) {
      throw new ExportError(
        `export ${file}: column "${name}" (${field}) appears ${at.length} times in the header ` +
          `(columns ${at.map((i) => i + 1).join(', ')}); which one to read is ambiguous`,
        { file, line, column: name },
      );
    } else columns[field] = at[0]!;
  }
  if (missing.length > 0) {
    const shown = header.slice(0, 30).map((h) => JSON.stringify(h));
    throw new ExportError(
      `export ${file} is missing column ${missing.map(([f, n]) => `"${n}" (${f})`).join(', ')}; ` +
        `its header (read as ${encoding}) has ${shown.join(', ')}${header.length > shown.length ? ', …' : ''}`,
      { file, line, column: missing[0]![1] },
    );
  }
  return columns;
}

/** Maps whatever ended the parse into an ExportError that says where. */
function fileFailure(err: unknown, file: string, lastRecordLine: number): ExportError {
  // lastRecordLine is where the last complete record ended; the broken one starts after it.
  if (err instanceof ExportError) return err;
  const csv = err as Partial<CsvError> & { code?: string };
  if (csv.code === 'CSV_QUOTE_NOT_CLOSED') {
    return new ExportError(
      `export ${file}: a quoted field in the row after line ${lastRecordLine} is never closed ` +
        `(the file ends inside it)`,
      { file, line: lastRecordLine + 1, cause: err },
    );
  }
  if (csv.code === 'CSV_MAX_RECORD_SIZE') {
    return new ExportError(
      `export ${file}: the row after line ${lastRecordLine} is longer than ${MAX_RECORD_BYTES} ` +
        `bytes; is a quote left open?`,
      { file, line: lastRecordLine + 1, cause: err },
    );
  }
  if (typeof csv.code === 'string' && csv.code.startsWith('CSV_')) {
    return new ExportError(
      `export ${file}: cannot parse the row after line ${lastRecordLine}: ${csv.message}`,
      {
        file,
        line: lastRecordLine + 1,
        cause: err,
      },
    );
  }
  return unreadable(file, err);
}

/**
 * The export's size, once its last byte is known to be a line break. A file that ends inside a line
 * was cut (a writer still at it, a copy interrupted): its last row may look valid with a truncated
 * value, so the whole file is refused before any row is read, and stays in place.
 */
async function lineCompleteSize(file: string): Promise<number> {
  let size: number;
  let last: number | undefined;
  try {
    const handle = await fs.promises.open(file, 'r');
    try {
      size = (await handle.stat()).size;
      if (size > 0) {
        const byte = Buffer.alloc(1);
        await handle.read(byte, 0, 1, size - 1);
        last = byte[0];
      }
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw unreadable(file, err);
  }
  if (size === 0) throw new ExportError(`export ${file} is empty: it has no header row`, { file });
  // LF and CR are single bytes in UTF-8 and CP932 alike (no CP932 trail byte is below 0x40).
  if (last !== 0x0a && last !== 0x0d) {
    throw new ExportError(
      `export ${file}: the last line is cut (the file does not end with a line break after ${size} bytes); ` +
        `it may still be being written, so nothing of it is taken`,
      { file },
    );
  }
  return size;
}

class RowChecker {
  private readonly firstSeen = new Map<string, { line: number; invoiceNumber: string }>();
  private readonly pdfPaths: PdfPathResolver;

  constructor(
    private readonly header: string[],
    private readonly columns: Columns,
    private readonly mapping: ColumnMapping,
    exportDirReal: string,
  ) {
    this.pdfPaths = new PdfPathResolver(exportDirReal);
  }

  async check(fields: string[], line: number): Promise<ExportRow> {
    const cell = (field: Field): string | undefined => {
      const at = this.columns[field];
      return at === undefined ? undefined : (fields[at] ?? '').trim();
    };
    const invoiceNumber = cell('invoiceNumber') || undefined;
    const rejected = (reason: string): ExportRow => ({
      ok: false,
      rejected: invoiceNumber === undefined ? { line, reason } : { line, invoiceNumber, reason },
    });
    if (fields.length !== this.header.length) {
      return rejected(`has ${fields.length} fields where the header has ${this.header.length}`);
    }

    const problems = new Map<Field, string[]>();
    const problem = (field: Field, message: string) =>
      problems.set(field, [...(problems.get(field) ?? []), `${this.mapping[field]} (${field}): ${message}`]);

    const parsed = rowSchema.safeParse({
      invoiceNumber: cell('invoiceNumber'),
      customerName: cell('customerName'),
      amount: cell('amount'),
      issueDate: cell('issueDate'),
      pdfPath: cell('pdfPath'),
    });
    if (!parsed.success)
      for (const issue of parsed.error.issues) problem(issue.path[0] as Field, issue.message);

    if (invoiceNumber !== undefined && !problems.has('invoiceNumber'))
      this.checkDuplicate(invoiceNumber, line, problem);

    let pdf: PdfPathResult | undefined;
    const pdfCell = cell('pdfPath');
    if (pdfCell) {
      pdf = await this.pdfPaths.resolve(pdfCell);
      if (!pdf.ok) problem('pdfPath', pdf.problem);
    }

    if (!parsed.success || problems.size > 0 || !pdf?.ok) {
      return rejected(FIELDS.flatMap((f) => problems.get(f) ?? []).join('; '));
    }
    const { data } = parsed;
    return {
      ok: true,
      invoice: {
        line,
        invoiceNumber: data.invoiceNumber,
        customerName: data.customerName,
        amount: data.amount,
        ...(data.issueDate === undefined ? {} : { issueDate: data.issueDate }),
        pdfPath: pdf.absolute,
        pdfRelativePath: pdf.relative,
      },
    };
  }

  /**
   * The invoice number becomes the sealed file's name, so numbers that differ only in letter case are
   * duplicates too: on a case-insensitive share one would overwrite the other.
   */
  private checkDuplicate(invoiceNumber: string, line: number, problem: (f: Field, m: string) => void): void {
    const key = invoiceNumber.toLowerCase();
    const first = this.firstSeen.get(key);
    if (first === undefined) {
      this.firstSeen.set(key, { line, invoiceNumber });
    } else if (first.invoiceNumber === invoiceNumber) {
      problem('invoiceNumber', `duplicate invoice number ${invoiceNumber}, first seen on line ${first.line}`);
    } else {
      problem(
        'invoiceNumber',
        `duplicate invoice number ${invoiceNumber}: differs only in letter case from ` +
          `${first.invoiceNumber}, first seen on line ${first.line}`,
      );
    }
  }
}

/**
 * Streams `file` row by row. Yields every data row as accepted or rejected, in file order, and
 * returns the summary. Throws ExportError for file-level failures: before the first row (unreadable,
 * last line cut, wrong encoding, missing or ambiguous column) or part-way (a quote never closed, a row over 1 MB,
 * the file changed to invalid UTF-8 during the read); part-way, exactly the rows before the broken
 * one have been yielded (bar a file changed under the read), and the caller decides what stands.
 */
export async function* readExport(
  file: string,
  options: ReadExportOptions,
): AsyncGenerator<ExportRow, ExportSummary> {
  const absFile = path.resolve(file);
  const mapping = checkMapping(options.mapping, absFile);
  const size = await lineCompleteSize(absFile);
  const encoding = await resolveEncoding(absFile, options.encoding ?? 'auto');
  let exportDirReal: string;
  try {
    exportDirReal = await fs.promises.realpath(path.dirname(absFile));
  } catch (err) {
    throw unreadable(absFile, err);
  }

  // Only the bytes that ended on a line break when we looked: what a writer appends meanwhile is not read.
  const source = fs.createReadStream(absFile, { highWaterMark: 64 * 1024, end: size - 1 });
  const decoder = new ExportDecoder(absFile, encoding);
  // A malformed CSV (a quote never closed) is a file failure, but it must come after exactly the
  // rows before it, not after however many the parser had buffered: so the parser does not error,
  // it reports the failure with the count of records parsed before it, and the loop throws there.
  let parsedRecords = 0;
  let parsedLastLine = 0;
  let parseFailure: { after: number; lastLine: number; err: CsvError } | undefined;
  const parser = parse({
    info: true,
    bom: true,
    // The decoder turned every CRLF and CR into LF.
    record_delimiter: '\n',
    skip_empty_lines: true,
    // A row with the wrong field count is a rejected row, not a parse error.
    relax_column_count: true,
    // Exports put stray quotes in names (`ABC "Trading" Co`): keep them as text, like Excel does.
    relax_quotes: true,
    max_record_size: MAX_RECORD_BYTES,
    skip_records_with_error: true,
    on_record: (record, context) => {
      parsedRecords++;
      parsedLastLine = context.lines;
      return record;
    },
    on_skip: (err) => {
      if (err !== undefined) parseFailure ??= { after: parsedRecords, lastLine: parsedLastLine, err };
      return undefined;
    },
  });
  // Failures of the file or the decoder reach the parser (pipeline destroys it with the error) and
  // so the loop below.
  pipeline(source, decoder, parser, () => undefined);
  const records = parser[Symbol.asyncIterator]() as AsyncIterator<ParsedRecord>;

  let checker: RowChecker | undefined;
  let consumed = 0;
  let rows = 0;
  let accepted = 0;
  let rejected = 0;
  let blank = 0;
  try {
    for (;;) {
      if (parseFailure !== undefined && consumed >= parseFailure.after) {
        throw fileFailure(parseFailure.err, absFile, parseFailure.lastLine);
      }
      let next: IteratorResult<ParsedRecord>;
      try {
        next = await records.next();
      } catch (err) {
        throw fileFailure(err, absFile, parsedLastLine);
      }
      if (next.done) {
        if (parseFailure !== undefined) throw fileFailure(parseFailure.err, absFile, parseFailure.lastLine);
        break;
      }
      consumed++;
      const { record, info } = next.value;
      // info.lines is the line a record ends on; line breaks inside quoted fields give its start.
      const line = info.lines - record.reduce((n, f) => n + countNewlines(f), 0);

      if (checker === undefined) {
        const header = record.map((h) => h.trim());
        const columns = locateColumns(header, mapping, absFile, line, encoding);
        checker = new RowChecker(header, columns, mapping, exportDirReal);
        continue;
      }
      // Excel saves emptied rows as ",,,,"; they are blank lines, not rows.
      if (record.every((f) => f.trim() === '')) {
        blank++;
        continue;
      }
      rows++;
      const row = await checker.check(record, line);
      if (row.ok) accepted++;
      else rejected++;
      yield row;
    }
  } finally {
    // Closes the file when the consumer stops early or a failure is thrown.
    source.destroy();
    parser.destroy();
  }
  if (checker === undefined)
    throw new ExportError(`export ${absFile} is empty: it has no header row`, { file: absFile });

  // Boundary check: our tally against the parser's own record count (header and blank rows aside).
  const parsedRows = parser.info.records - 1 - blank;
  if (rows !== accepted + rejected || rows !== parsedRows) {
    throw new ExportError(
      `export ${absFile}: counts do not add up: parser read ${parsedRows} rows, ` +
        `reader saw ${rows} = ${accepted} accepted + ${rejected} rejected`,
      { file: absFile },
    );
  }
  return { file: absFile, encoding, rows, accepted, rejected, bytes: size };
}
