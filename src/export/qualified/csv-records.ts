// One CSV file of a data export as a stream of records with the line each starts on: the same
// decoding (./decode.ts), parser settings and file-level failures as the PDF-export reader, its header
// row located once. Blank lines and all-blank rows (Excel's ",,,,") are skipped, never records.
import fs from 'node:fs';
import { pipeline } from 'node:stream';
import { parse, type CsvError, type Info } from 'csv-parse';
import { ExportDecoder, resolveEncoding, unreadable } from '../decode';
import { ExportError } from '../export-error';
import type { ExportEncoding } from '../types';

/**
 * A row longer than this (UTF-8 bytes, as csv-parse counts) fails the file: with real invoice rows it
 * can only be a quote left open, which would otherwise pull the rest of the file into memory.
 */
export const MAX_RECORD_BYTES = 1_000_000;

/** The most records handed over at once. */
const BATCH = 1024;

export interface CsvRecord {
  fields: string[];
  /** where the record starts (header = line 1) */
  line: number;
}

export interface OpenCsv {
  file: string;
  encoding: 'utf8' | 'cp932';
  /** the header row's cells, trimmed */
  header: string[];
  headerLine: number;
  /** the data records after the header, in file order, as many at a time as the parser holds (≤ 1,024) */
  batches: AsyncGenerator<CsvRecord[], void, undefined>;
  /** Closes the file; safe to call more than once, and after the records ran out. */
  close(): void;
}

function countNewlines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/**
 * The file's size, once its last byte is known to be a line break: a file that ends inside a line
 * was cut (a writer still at it, a copy interrupted) and its last row may look valid, truncated.
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

function fileFailure(err: unknown, file: string, lastRecordLine: number): ExportError {
  if (err instanceof ExportError) return err;
  const csv = err as Partial<CsvError> & { code?: string };
  const after = `the row after line ${lastRecordLine}`;
  if (csv.code === 'CSV_QUOTE_NOT_CLOSED') {
    return new ExportError(
      `export ${file}: a quoted field in ${after} is never closed (the file ends inside it)`,
      { file, line: lastRecordLine + 1, cause: err },
    );
  }
  if (csv.code === 'CSV_MAX_RECORD_SIZE') {
    return new ExportError(
      `export ${file}: ${after} is longer than ${MAX_RECORD_BYTES} bytes; is a quote left open?`,
      { file, line: lastRecordLine + 1, cause: err },
    );
  }
  if (typeof csv.code === 'string' && csv.code.startsWith('CSV_')) {
    return new ExportError(`export ${file}: cannot parse ${after}: ${csv.message}`, {
      file,
      line: lastRecordLine + 1,
      cause: err,
    });
  }
  return unreadable(file, err);
}

/**
 * Opens `file` (absolute), settles its encoding and reads its header row. Throws ExportError when the
 * file cannot be read, is empty, is cut, is not in the encoding configured, or has no header row;
 * the records' iteration throws ExportError for a malformed CSV part-way.
 */
export async function openCsv(file: string, configured: ExportEncoding): Promise<OpenCsv> {
  const size = await lineCompleteSize(file);
  const encoding = await resolveEncoding(file, configured);
  // Only the bytes that ended on a line break when we looked: what a writer appends meanwhile is not read.
  const source = fs.createReadStream(file, { highWaterMark: 64 * 1024, end: size - 1 });
  const decoder = new ExportDecoder(file, encoding);
  // A malformed CSV (a quote never closed) is a file failure, but it must come after exactly the
  // records before it, not after however many the parser had buffered: so the parser does not error,
  // it reports the failure with the count of records parsed before it, and next() throws there.
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
  // Failures of the file or the decoder reach the parser (pipeline destroys it with the error).
  pipeline(source, decoder, parser, () => undefined);
  const close = () => {
    source.destroy();
    parser.destroy();
  };
  // Records are taken from a queue the parser's 'data' events fill (paused at BATCH records, resumed
  // once taken): one promise per batch rather than one per record, which is much of the cost of a
  // large export.
  type Parsed = { record: string[]; info: Info };
  let queue: Parsed[] = [];
  let taken = 0;
  let ended = false;
  let streamFailure: unknown;
  let wake: (() => void) | undefined;
  const rouse = () => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };
  parser.on('data', (item: Parsed) => {
    if (queue.push(item) - taken >= BATCH) parser.pause();
    rouse();
  });
  parser.on('end', () => {
    ended = true;
    rouse();
  });
  parser.on('error', (err) => {
    streamFailure ??= err;
    rouse();
  });
  parser.on('close', () => {
    ended = true;
    rouse();
  });
  const wait = () => new Promise<void>((resolve) => (wake = resolve));
  let consumed = 0;
  /** The next record: undefined when none is queued yet (wait, then ask again), 'end' after the last. */
  const take = (): CsvRecord | undefined | 'end' => {
    for (;;) {
      if (parseFailure !== undefined && consumed >= parseFailure.after) {
        throw fileFailure(parseFailure.err, file, parseFailure.lastLine);
      }
      if (taken === queue.length) {
        queue = [];
        taken = 0;
        if (streamFailure !== undefined) throw fileFailure(streamFailure, file, parsedLastLine);
        if (!ended) {
          parser.resume();
          return undefined;
        }
        if (parseFailure !== undefined) throw fileFailure(parseFailure.err, file, parseFailure.lastLine);
        return 'end';
      }
      const { record, info } = queue[taken++]!;
      consumed++;
      // Excel saves emptied rows as ",,,,"; they are blank lines, not rows.
      if (record.every((f) => f.trim() === '')) continue;
      // info.lines is the line a record ends on; line breaks inside quoted fields give its start.
      return { fields: record, line: info.lines - record.reduce((n, f) => n + countNewlines(f), 0) };
    }
  };
  const next = async (): Promise<CsvRecord | undefined> => {
    for (;;) {
      const r = take();
      if (r === 'end') return undefined;
      if (r !== undefined) return r;
      await wait();
    }
  };

  let first: CsvRecord | undefined;
  try {
    first = await next();
  } catch (err) {
    close();
    throw err;
  }
  if (first === undefined) {
    close();
    throw new ExportError(`export ${file} is empty: it has no header row`, { file });
  }
  async function* batches(): AsyncGenerator<CsvRecord[], void, undefined> {
    try {
      for (;;) {
        const batch: CsvRecord[] = [];
        let state: 'full' | 'wait' | 'end' = 'full';
        let failure: unknown;
        try {
          while (batch.length < BATCH) {
            const r = take();
            if (r === undefined || r === 'end') {
              state = r === undefined ? 'wait' : 'end';
              break;
            }
            batch.push(r);
          }
        } catch (err) {
          failure = err;
        }
        // The records before a failure are still records: they come first.
        if (batch.length > 0) yield batch;
        if (failure !== undefined) throw failure;
        if (state === 'end') return;
        // Wait only when nothing came since take() found the queue empty: once a batch was yielded,
        // records may have arrived (and their wake-up passed unheard) while the consumer worked.
        if (state === 'wait' && batch.length === 0) await wait();
      }
    } finally {
      close();
    }
  }
  return {
    file,
    encoding,
    header: first.fields.map((h) => h.trim()),
    headerLine: first.line,
    batches: batches(),
    close,
  };
}

/**
 * The index of each named column in `header`. Throws ExportError naming the file and every column
 * missing (the first in `column`), or a column that appears more than once.
 */
export function locateColumns<F extends string>(
  csv: Pick<OpenCsv, 'file' | 'header' | 'headerLine' | 'encoding'>,
  wanted: readonly (readonly [F, string])[],
): Map<F, number> {
  const { file, header, headerLine: line } = csv;
  const columns = new Map<F, number>();
  const missing: (readonly [F, string])[] = [];
  for (const [field, name] of wanted) {
    const at = header.flatMap((h, i) => (h === name ? [i] : []));
    if (at.length === 0) missing.push([field, name]);
    else if (at.length > 1) {
      throw new ExportError(
        `export ${file}: column "${name}" (${field}) appears ${at.length} times in the header ` +
          `(columns ${at.map((i) => i + 1).join(', ')}); which one to read is ambiguous`,
        { file, line, column: name },
      );
    } else columns.set(field, at[0]!);
  }
  if (missing.length > 0) {
    const shown = header.slice(0, 30).map((h) => JSON.stringify(h));
    throw new ExportError(
      `export ${file} is missing column ${missing.map(([f, n]) => `"${n}" (${f})`).join(', ')}; ` +
        `its header (read as ${csv.encoding}) has ${shown.join(', ')}${header.length > shown.length ? ', …' : ''}`,
      { file, line, column: missing[0]![1] },
    );
  }
  return columns;
}
