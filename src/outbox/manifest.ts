// The per-folder manifest (manifest.csv): one row per sealed invoice, UTF-8 with a BOM so Excel shows
// Japanese correctly. Rows are appended one line at a time. Every cell is written through excelSafe
// (a customer named `=HYPERLINK(...)` stays text in Excel) and read back through excelRead.
import fs from 'node:fs/promises';
import path from 'node:path';
import { KeyedGroupCommit } from '../common/group-commit';
import { parse } from 'csv-parse/sync';
import { csvLine, csvRecords } from '../common/csv-text';
import { excelRead, excelSafe } from '../common/excel-cell';
import { toJst, toUtc } from '../common/japan-time';
import { appendFileDurably } from './atomic-write';
import { OutboxConflictError, writeNew } from './outbox';

export interface ManifestRow {
  invoiceNumber: string;
  file: string;
  sealedSha256: string;
  sourceSha256: string;
  /** when the seal was made, UTC (ISO); kept beside sealedAtUtc for the manifests' first readers */
  signingTime: string;
  certificateSerial: string;
  job: string;
  runId: string;
  /** PAdES level the file reached (B-B, B-T, B-LT, B-LTA); absent in manifests written before levels */
  level?: string;
  // The invoice's facts for finance; absent in manifests (and for jobs) from before they were carried.
  /** the customer as the export names it */
  customer?: string;
  /** whole yen, as digits (a credit note has a leading minus) */
  amount?: string;
  /** YYYY-MM-DD */
  issueDate?: string;
  /** the seal time in Japan time, e.g. 2026-12-01T02:03:04.005+09:00 */
  sealedAtJst?: string;
  /** the same instant in UTC */
  sealedAtUtc?: string;
  /** `sealed`, or `renewed` for a row a renewal appended (its new digest and level) */
  status?: string;
  /** the issuer's registration number (T and 13 digits) of an invoice rendered from a data export */
  registrationNumber?: string;
}

export const MANIFEST_NAME = 'manifest.csv';
// New columns go last: a manifest started with an older header keeps its shape (see columnsOf).
export const MANIFEST_COLUMNS: readonly (keyof ManifestRow)[] = [
  'invoiceNumber',
  'file',
  'sealedSha256',
  'sourceSha256',
  'signingTime',
  'certificateSerial',
  'job',
  'runId',
  'level',
  'customer',
  'amount',
  'issueDate',
  'sealedAtJst',
  'sealedAtUtc',
  'status',
  'registrationNumber',
];

/** The invoice facts a job carries, as manifest cells. */
export interface InvoiceFacts {
  customer?: string;
  amount?: number;
  issueDate?: string;
  /** the issuer's 登録番号, for an invoice rendered from a data export */
  registrationNumber?: string;
}

/** The manifest cells for an invoice's facts and its seal time (JST and UTC), for a row being written. */
export function manifestFacts(
  facts: InvoiceFacts,
  sealedAt: Date | string,
): Pick<
  ManifestRow,
  'customer' | 'amount' | 'issueDate' | 'registrationNumber' | 'sealedAtJst' | 'sealedAtUtc'
> {
  return {
    customer: facts.customer,
    amount: facts.amount === undefined ? undefined : String(facts.amount),
    issueDate: facts.issueDate,
    registrationNumber: facts.registrationNumber,
    sealedAtJst: toJst(sealedAt),
    sealedAtUtc: toUtc(sealedAt),
  };
}

/** One CSV record (CRLF), every cell neutralised for Excel. */
export function csvRecord(cells: readonly string[]): string {
  return csvLine(cells.map(excelSafe));
}

/** Creates the manifest with its header if it does not exist yet, atomically, so that two processes
 * starting a folder at once cannot overwrite each other's first rows. */
async function ensureManifest(file: string): Promise<void> {
  try {
    await fs.access(file);
    return;
  } catch {
    // fall through: create it
  }
  try {
    await writeNew(file, Buffer.from('\uFEFF' + csvRecord(MANIFEST_COLUMNS)));
  } catch (err) {
    if (!(err instanceof OutboxConflictError)) throw err;
  }
}

/** The columns an existing manifest was started with: one written before a column was added keeps
 * its shape (its rows stay parseable), so new rows leave that column out. */
async function columnsOf(file: string): Promise<(keyof ManifestRow)[]> {
  // A header never changes once written: read once per manifest and process, not per delivered row.
  let columns = knownColumns.get(file);
  if (!columns) {
    columns = await readColumns(file);
    if (knownColumns.size >= 1024) knownColumns.delete(knownColumns.keys().next().value!);
    knownColumns.set(file, columns);
  }
  return columns;
}

const knownColumns = new Map<string, (keyof ManifestRow)[]>();

async function readColumns(file: string): Promise<(keyof ManifestRow)[]> {
  const handle = await fs.open(file, 'r');
  try {
    const head = Buffer.alloc(1024);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    const line =
      head
        .toString('utf8', 0, bytesRead)
        .replace(/^\uFEFF/, '')
        .split(/\r?\n/)[0] ?? '';
    const names = line.split(',');
    return MANIFEST_COLUMNS.filter((c) => names.includes(c));
  } finally {
    await handle.close();
  }
}

/**
 * Appends one row durably (fsync before it resolves, so before the job completes). Rows delivered
 * together to one manifest share one write and one fsync (a group commit); O_APPEND keeps that write
 * whole against other processes appending to the same manifest.
 */
export async function appendManifestRow(dir: string, row: ManifestRow): Promise<string> {
  const file = path.join(dir, MANIFEST_NAME);
  await manifestAppends.submit(file, row);
  return file;
}

const manifestAppends = new KeyedGroupCommit<ManifestRow>(
  async (file, rows) => {
    await ensureManifest(file);
    const columns = await columnsOf(file);
    // The group's rows in one csv-stringify call: setting it up per row cost more than the rows.
    // At most 200 rows (well under the 512 KiB that one write() of an append carries whole).
    await appendFileDurably(file, csvRecords(rows.map((row) => columns.map((c) => excelSafe(row[c] ?? '')))));
  },
  { maxItems: 200 },
);

/** The records of a CSV written with csvRecord (header first), each cell as it was before excelSafe. */
export async function readExcelCsv(file: string): Promise<Record<string, string>[]> {
  const text = await fs.readFile(file, 'utf8');
  const records = parse(text, { bom: true, columns: true, skip_empty_lines: true }) as Record<
    string,
    string
  >[];
  // After parsing, not in csv-parse's `cast`, which costs five times the parse itself; only a cell
  // that starts with an apostrophe can have been neutralised.
  for (const record of records) {
    for (const [column, cell] of Object.entries(record)) {
      if (cell.startsWith("'")) record[column] = excelRead(cell);
    }
  }
  return records;
}

/** The rows of a manifest, each cell as it was before excelSafe. */
export async function readManifest(file: string): Promise<ManifestRow[]> {
  return (await readExcelCsv(file)) as unknown as ManifestRow[];
}

/** Whether the manifest in `dir` already lists `invoiceNumber` with this sealed file digest. */
export async function manifestHasRow(
  dir: string,
  invoiceNumber: string,
  sealedSha256: string,
): Promise<boolean> {
  return (await findManifestRow(dir, invoiceNumber, sealedSha256)) !== undefined;
}

/** The manifest row in `dir` for `invoiceNumber` with this sealed file digest, if there is one. */
export async function findManifestRow(
  dir: string,
  invoiceNumber: string,
  sealedSha256: string,
): Promise<ManifestRow | undefined> {
  try {
    const rows = await readManifest(path.join(dir, MANIFEST_NAME));
    return rows.find((r) => r.invoiceNumber === invoiceNumber && r.sealedSha256 === sealedSha256);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * The latest row per invoice in `dir`'s manifest (the manifest is append-only: a renewal appends a
 * row with the new digest and level, and the row written last wins). Empty when there is no manifest.
 */
export async function latestManifestRows(dir: string): Promise<Map<string, ManifestRow>> {
  const latest = new Map<string, ManifestRow>();
  let rows: ManifestRow[];
  try {
    rows = await readManifest(path.join(dir, MANIFEST_NAME));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return latest;
    throw err;
  }
  for (const row of rows) latest.set(row.invoiceNumber, row);
  return latest;
}
