// Rows of large manifests found without holding them (for run reports, which look up the rows of
// hundreds of thousands of invoices): one streamed read of a folder's manifest.csv notes where each
// invoice's rows lie in the file, a few dozen bytes per row, and rows asked for are read back from
// there. A manifest is only appended to, so a place once noted stays right; rows appended after the
// folder was indexed are not seen (as a manifest read whole once would not see them).
import fs from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream';
import { parse } from 'csv-parse';
import { parse as parseSync } from 'csv-parse/sync';
import pLimit from 'p-limit';
import { excelRead } from '../common/excel-cell';
import { groupBy } from '../common/group-by';
import { MANIFEST_NAME, type ManifestRow } from './manifest';
import { OutboxError } from './outbox';

interface FolderIndex {
  file: string;
  /** the manifest's header */
  columns: string[];
  /** invoice → its row (or rows, in file order), numbered from 0 after the header */
  rows: Map<string, number | number[]>;
  /** row i is the bytes [bounds[i], bounds[i + 1]) of the file (an empty line before it included) */
  bounds: number[];
}

/** Parse options of a manifest, as readExcelCsv reads one whole. */
const CSV = { bom: true, skip_empty_lines: true } as const;
/** Rows this close in the file are read (and parsed) in one piece with those between them. */
const READ_GAP = 8 * 1024;
/** ... up to this many bytes in one piece. */
const READ_MAX = 1024 * 1024;
/** Reads in flight per folder. */
const READS = 16;
const CRLF = Buffer.from('\r\n');

async function indexFolder(dir: string): Promise<FolderIndex | undefined> {
  const file = path.join(dir, MANIFEST_NAME);
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const index: FolderIndex = { file, columns: [], rows: new Map(), bounds: [] };
  let invoiceAt = -1;
  // Each record is noted as csv-parse makes it and dropped there (on_record returns null): none is
  // buffered in the stream or kept. `bytes`: where the record ends in the file (the BOM counted).
  const note = (record: string[], { bytes }: { bytes: number }): null => {
    if (index.bounds.length === 0) {
      index.columns = record;
      invoiceAt = record.indexOf('invoiceNumber');
      index.bounds.push(bytes);
      return null;
    }
    const n = index.bounds.length - 1;
    index.bounds.push(bytes);
    if (invoiceAt < 0) return null;
    const invoice = excelRead(record[invoiceAt] ?? '');
    const same = index.rows.get(invoice);
    if (same === undefined) index.rows.set(invoice, n);
    else if (typeof same === 'number') index.rows.set(invoice, [same, n]);
    else same.push(n);
    return null;
  };
  try {
    const parser = pipeline(
      handle.createReadStream({ autoClose: false }),
      parse({ ...CSV, on_record: note }),
      () => undefined, // an error ends the iteration below with it
    );
    for await (const _ of parser) {
      // nothing comes out: on_record keeps what is needed of each record
    }
  } finally {
    await handle.close();
  }
  return index;
}

/** A record of a manifest, each cell as it was before excelSafe (as readManifest gives it). */
function manifestRow(record: Record<string, string>): ManifestRow {
  for (const column in record) {
    const cell = record[column]!;
    if (cell.startsWith("'")) record[column] = excelRead(cell);
  }
  return record as unknown as ManifestRow;
}

/** Reads rows `wanted` (ascending) of a folder's manifest as bytes, a few reads for rows that lie
 * together; each row's bytes are a view of its read (outside the JS heap until parsed). */
async function readRows(index: FolderIndex, wanted: readonly number[]): Promise<Map<number, Buffer>> {
  const pieces: { first: number; last: number; wanted: number[] }[] = [];
  for (const n of wanted) {
    const piece = pieces.at(-1);
    if (
      piece &&
      index.bounds[n]! - index.bounds[piece.last + 1]! <= READ_GAP &&
      index.bounds[n + 1]! - index.bounds[piece.first]! <= READ_MAX
    ) {
      piece.last = n;
      piece.wanted.push(n);
    } else {
      pieces.push({ first: n, last: n, wanted: [n] });
    }
  }
  const out = new Map<number, Buffer>();
  const handle = await fs.open(index.file, 'r');
  try {
    const limit = pLimit(READS);
    await Promise.all(
      pieces.map(({ first, last, wanted: these }) =>
        limit(async () => {
          const start = index.bounds[first]!;
          const bytes = Buffer.allocUnsafe(index.bounds[last + 1]! - start);
          const { bytesRead } = await handle.read(bytes, 0, bytes.length, start);
          if (bytesRead !== bytes.length) {
            throw new OutboxError(`${index.file} changed while a run report read it (rows ${first}-${last})`);
          }
          for (const n of these)
            out.set(n, bytes.subarray(index.bounds[n]! - start, index.bounds[n + 1]! - start));
        }),
      ),
    );
  } finally {
    await handle.close();
  }
  return out;
}

/** The rows of one invoice in one folder's manifest, as read (ManifestIndex.rowsOf parses them). */
export interface ManifestRecords {
  folder: FolderIndex;
  /** one CSV record each, in file order */
  records: Buffer[];
}

/** Where the manifests of the folders asked about keep each invoice's rows, for one report. */
export class ManifestIndex {
  private readonly folders = new Map<string, Promise<FolderIndex | undefined>>();

  private folder(dir: string): Promise<FolderIndex | undefined> {
    let index = this.folders.get(dir);
    if (!index) {
      index = indexFolder(dir);
      this.folders.set(dir, index);
    }
    return index;
  }

  /**
   * The rows of each asked-for invoice in its folder's manifest, in file order, as bytes (undefined for
   * a folder with no manifest, an invoice it does not list, or no question); each folder's rows in one
   * batch of reads. They take no JS heap until parsed (rowsOf), so a report can read a chunk's rows
   * and parse them a few at a time, each few made into report rows and dropped at once.
   */
  async recordsOf(
    asked: readonly ({ dir: string; invoice: string } | undefined)[],
  ): Promise<(ManifestRecords | undefined)[]> {
    const byDir = groupBy(
      asked.flatMap((a, i) => (a ? [i] : [])),
      (i) => asked[i]!.dir,
    );
    const out: (ManifestRecords | undefined)[] = asked.map(() => undefined);
    for (const [dir, which] of byDir) {
      const folder = await this.folder(dir);
      if (!folder) continue;
      const numbers = (i: number): number[] => {
        const rows = folder.rows.get(asked[i]!.invoice);
        return rows === undefined ? [] : typeof rows === 'number' ? [rows] : rows;
      };
      const wanted = [...new Set(which.flatMap(numbers))].sort((a, b) => a - b);
      if (wanted.length === 0) continue;
      const bytes = await readRows(folder, wanted);
      for (const i of which) {
        const records = numbers(i).map((n) => bytes.get(n)!);
        if (records.length > 0) out[i] = { folder, records };
      }
    }
    return out;
  }

  /** The rows recordsOf read, parsed (one csv-parse call per folder for the lot), each cell as it was
   * before excelSafe. */
  rowsOf(read: readonly (ManifestRecords | undefined)[]): ManifestRow[][] {
    const byFolder = groupBy(
      read.flatMap((r, i) => (r ? [i] : [])),
      (i) => read[i]!.folder,
    );
    const out: ManifestRow[][] = read.map(() => []);
    for (const [folder, which] of byFolder) {
      // A last row with no line end (a manifest cut short) must not run into the next one.
      const pieces = which.flatMap((i) =>
        read[i]!.records.map((r) => (r.at(-1) === 0x0a ? r : Buffer.concat([r, CRLF]))),
      );
      const records = parseSync(Buffer.concat(pieces), { ...CSV, columns: folder.columns }) as Record<
        string,
        string
      >[];
      // One record per piece, or the file is not what was indexed.
      if (records.length !== pieces.length) {
        throw new OutboxError(`${folder.file} changed while a run report read it`);
      }
      let next = 0;
      for (const i of which) {
        out[i] = read[i]!.records.map(() => manifestRow(records[next++]!));
      }
    }
    return out;
  }
}
