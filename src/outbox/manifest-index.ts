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
import { MANIFEST_NAME, type ManifestRow } from './manifest';
import { OutboxError } from './outbox';

interface FolderIndex {
  file: string;
  /** the manifest's header */
  columns: string[];
  /** invoice → its row (or rows, in file order), numbered from 0 after the header */
  rows: Map<string, number | number[]>;
  /** row i is the bytes [starts[i], ends[i]) of the file (an empty line before it included) */
  starts: number[];
  ends: number[];
}

/** Parse options of a manifest, as readExcelCsv reads one whole. */
const CSV = { bom: true, skip_empty_lines: true } as const;
/** Rows this close in the file are read (and parsed) in one piece with those between them. */
const READ_GAP = 8 * 1024;
/** ... up to this many bytes in one piece. */
const READ_MAX = 1024 * 1024;
/** Reads in flight per folder. */
const READS = 16;

async function indexFolder(dir: string): Promise<FolderIndex | undefined> {
  const file = path.join(dir, MANIFEST_NAME);
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const index: FolderIndex = { file, columns: [], rows: new Map(), starts: [], ends: [] };
  try {
    // info.bytes: where the record just parsed ends in the file (the BOM counted).
    const records = pipeline(
      handle.createReadStream({ autoClose: false }),
      parse({ ...CSV, info: true }),
      () => undefined, // an error ends the iteration below with it
    ) as AsyncIterable<{ record: string[]; info: { bytes: number } }>;
    let header = true;
    let invoiceAt = -1;
    let end = 0;
    for await (const { record, info } of records) {
      if (header) {
        header = false;
        index.columns = record;
        invoiceAt = record.indexOf('invoiceNumber');
        end = info.bytes;
        continue;
      }
      const n = index.starts.length;
      index.starts.push(end);
      index.ends.push(info.bytes);
      end = info.bytes;
      if (invoiceAt < 0) continue;
      const invoice = excelRead(record[invoiceAt] ?? '');
      const same = index.rows.get(invoice);
      if (same === undefined) index.rows.set(invoice, n);
      else if (typeof same === 'number') index.rows.set(invoice, [same, n]);
      else same.push(n);
    }
  } finally {
    await handle.close();
  }
  return index;
}

/** A record of a manifest, each cell as it was before excelSafe (as readManifest gives it). */
function manifestRow(record: Record<string, string>): ManifestRow {
  for (const [column, cell] of Object.entries(record)) {
    if (cell.startsWith("'")) record[column] = excelRead(cell);
  }
  return record as unknown as ManifestRow;
}

/** Reads rows `wanted` (ascending) of a folder's manifest, a few reads for rows that lie together. */
async function readRows(index: FolderIndex, wanted: readonly number[]): Promise<Map<number, ManifestRow>> {
  const pieces: { first: number; last: number; wanted: number[] }[] = [];
  for (const n of wanted) {
    const piece = pieces.at(-1);
    if (
      piece &&
      index.starts[n]! - index.ends[piece.last]! <= READ_GAP &&
      index.ends[n]! - index.starts[piece.first]! <= READ_MAX
    ) {
      piece.last = n;
      piece.wanted.push(n);
    } else {
      pieces.push({ first: n, last: n, wanted: [n] });
    }
  }
  const out = new Map<number, ManifestRow>();
  const handle = await fs.open(index.file, 'r');
  try {
    const limit = pLimit(READS);
    await Promise.all(
      pieces.map(({ first, last, wanted: these }) =>
        limit(async () => {
          const start = index.starts[first]!;
          const bytes = Buffer.alloc(index.ends[last]! - start);
          const { bytesRead } = await handle.read(bytes, 0, bytes.length, start);
          const records =
            bytesRead === bytes.length
              ? (parseSync(bytes, { ...CSV, columns: index.columns }) as Record<string, string>[])
              : [];
          // Rows first..last lie back to back: one record each, or the file is not what was indexed.
          if (records.length !== last - first + 1) {
            throw new OutboxError(`${index.file} changed while a run report read it (rows ${first}-${last})`);
          }
          for (const n of these) out.set(n, manifestRow(records[n - first]!));
        }),
      ),
    );
  } finally {
    await handle.close();
  }
  return out;
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
   * The rows of each asked-for invoice in its folder's manifest, in file order ([] for a folder with
   * no manifest, an invoice it does not list, or no question); each folder's rows in one batch of reads.
   */
  async rowsOf(asked: readonly ({ dir: string; invoice: string } | undefined)[]): Promise<ManifestRow[][]> {
    const byDir = new Map<string, number[]>();
    for (const [i, a] of asked.entries()) {
      if (!a) continue;
      const list = byDir.get(a.dir);
      if (list) list.push(i);
      else byDir.set(a.dir, [i]);
    }
    const out: ManifestRow[][] = asked.map(() => []);
    for (const [dir, which] of byDir) {
      const index = await this.folder(dir);
      if (!index) continue;
      const numbers = (i: number): number[] => {
        const rows = index.rows.get(asked[i]!.invoice);
        return rows === undefined ? [] : typeof rows === 'number' ? [rows] : rows;
      };
      const wanted = [...new Set(which.flatMap(numbers))].sort((a, b) => a - b);
      if (wanted.length === 0) continue;
      const rows = await readRows(index, wanted);
      for (const i of which) out[i] = numbers(i).map((n) => rows.get(n)!);
    }
    return out;
  }
}
