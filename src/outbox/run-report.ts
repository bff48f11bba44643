// Run reports for finance: when a run settles, one folder per run and tenant,
// <outbox>/<tenant>/<run date>/runs/<run ID>/, beside the sealed PDFs finance already opens, holding
//   manifest.csv  every invoice of the run once, in natural invoice order (INV-2 before INV-10):
//                 sealed, already sealed (naming the earlier file) or failed (with kind and reason);
//   rejects.csv   the export rows this run rejected (export file, line, invoice, reason);
//   summary.json  the run's identity, times (UTC and JST), counts, level and the files above.
// Both CSVs are UTF-8 with a BOM and every cell passes excelSafe. Each file is replaced atomically
// (writeReplacing) and summary.json is written last, so a summary names only files that exist; a run
// settled again (`sealer retry`) gets its report rewritten as the run now stands — the history of what
// happened is the audit trail's job, not the report's.
import path from 'node:path';
import pLimit from 'p-limit';
import { toJst, toUtc } from '../common/japan-time';
import { csvRecord, readExcelCsv, type ManifestRow } from './manifest';
import { ManifestIndex, type ManifestRecords } from './manifest-index';
import { OutboxError, writeReplacing } from './outbox';
import { findSealed } from './sealed-index';

export type RunReportStatus = 'sealed' | 'already sealed' | 'failed';

/** One invoice of the run as the queue knows it; the outbox adds what its files say. */
export interface RunReportInvoice {
  invoiceNumber: string;
  /** the source PDF's digest (from the job ID): finds the sealed file in the sealed index */
  sourceSha256?: string;
  status: RunReportStatus;
  customer?: string;
  /** whole yen */
  amount?: number;
  issueDate?: string;
  line?: number;
  exportFile?: string;
  /** the sealed file (absolute), when the job returned it; else looked up in the sealed index */
  file?: string;
  sealedSha256?: string;
  failure?: { kind?: string; reason: string; attempts?: number };
}

export interface RunReportReject {
  /** the export file's name */
  exportFile: string;
  line: number;
  invoiceNumber?: string;
  reason: string;
}

export interface RunReportInput<Invoices = RunReportInvoice[]> {
  runId: string;
  job: string;
  tenant: string;
  runDate: string;
  /** ISO instants */
  startedAt?: string;
  endedAt: string;
  level?: string;
  counts: Record<string, number>;
  /**
   * The run's invoices: a list, put in report order here; or (RunReportChunks), for a run too large to
   * hold as one, chunks already in report order (compareReportOrder), made as the report is written.
   */
  invoices: Invoices;
  rejects: RunReportReject[];
}

/** Invoices handed to writeRunReport a chunk at a time, in report order. */
export type RunReportChunks = AsyncIterable<readonly RunReportInvoice[]>;

export interface RunReportFiles {
  dir: string;
  manifest: string;
  rejects: string;
  summary: string;
}

/** What summary.json holds. Paths are relative to the report's folder (`files`) and to the tenant's
 * outbox folder (`folder`). */
export interface RunReportSummary {
  runId: string;
  job: string;
  tenant: string;
  runDate: string;
  startedAt?: { utc: string; jst: string };
  endedAt: { utc: string; jst: string };
  level?: string;
  counts: Record<string, number>;
  /** invoices the manifest lists, by status, and rejected rows rejects.csv lists */
  listed: { sealed: number; alreadySealed: number; failed: number; rejects: number };
  folder: string;
  files: { manifest: string; rejects: string };
  writtenAt: string;
}

export const RUN_REPORT_COLUMNS = [
  'invoiceNumber',
  'customer',
  'amount',
  'issueDate',
  'status',
  'file',
  'sealedSha256',
  'sealedAtJst',
  'sealedAtUtc',
  'certificateSerial',
  'level',
  'sealedByRun',
  'failureKind',
  'failureReason',
  'attempts',
  'exportFile',
  'line',
  'registrationNumber',
] as const;

export const RUN_REJECTS_COLUMNS = ['exportFile', 'line', 'invoiceNumber', 'reason'] as const;

const SAFE_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** The report folder of a run: <root>/<tenant>/<run date>/runs/<run ID>. */
export function runReportDir(root: string, tenant: string, runDate: string, runId: string): string {
  for (const [what, value] of [
    ['tenant', tenant],
    ['run date', runDate],
    ['run ID', runId],
  ] as const) {
    if (!SAFE_SEGMENT.test(value)) {
      throw new OutboxError(`unsafe ${what} for a run report path: ${JSON.stringify(value)}`);
    }
  }
  return path.join(root, tenant, runDate, 'runs', runId);
}

// Natural order: digit runs compare as numbers, so INV-2 comes before INV-10.
const natural = new Intl.Collator('en', { numeric: true, sensitivity: 'variant' });

/** What puts a report's invoices in order. */
export type RunReportOrderKey = Pick<RunReportInvoice, 'invoiceNumber' | 'line' | 'sourceSha256'>;

/** The report's order: natural invoice order (INV-2 before INV-10), then export line, then source. */
export function compareReportOrder(a: RunReportOrderKey, b: RunReportOrderKey): number {
  return (
    natural.compare(a.invoiceNumber, b.invoiceNumber) ||
    (a.line ?? 0) - (b.line ?? 0) ||
    (a.sourceSha256 ?? '').localeCompare(b.sourceSha256 ?? '')
  );
}

/** Where each invoice's sealed file is (the sealed index), then which manifest row wrote it. */
interface SealedFacts {
  file?: string;
  sealedByRun?: string;
  row?: ManifestRow;
}

/** The row that wrote this sealed file, of the invoice's rows in its folder: by digest when known,
 * else the last. */
function rowOf(rows: readonly ManifestRow[], file: string, sealedSha256?: string): ManifestRow | undefined {
  const same = rows.filter((r) => r.file === path.basename(file));
  return (
    (sealedSha256 === undefined ? undefined : same.find((r) => r.sealedSha256 === sealedSha256)) ??
    same.at(-1)
  );
}

/** Each invoice's sealed file and the run that sealed it (sealed-index reads, a few at once). */
function locate(
  root: string,
  tenant: string,
  chunk: readonly RunReportInvoice[],
  limit: pLimit.Limit,
): Promise<Pick<SealedFacts, 'file' | 'sealedByRun'>[]> {
  return Promise.all(
    chunk.map((inv) =>
      limit(async () => {
        if (inv.status === 'failed' || inv.sourceSha256 === undefined) return { file: inv.file };
        const record = await findSealed(root, tenant, inv.invoiceNumber, inv.sourceSha256);
        return { file: inv.file ?? record?.file, sealedByRun: record?.runId };
      }),
    ),
  );
}

/** A chunk of invoices with their sealed files located and their manifest rows read (as bytes). */
interface ReadChunk {
  chunk: readonly RunReportInvoice[];
  located: Pick<SealedFacts, 'file' | 'sealedByRun'>[];
  records: (ManifestRecords | undefined)[];
}

/** Locates a chunk's sealed files (sealed index) and reads their manifest rows: the chunk's I/O. */
async function readChunk(
  root: string,
  tenant: string,
  chunk: readonly RunReportInvoice[],
  manifests: ManifestIndex,
  limit: pLimit.Limit,
): Promise<ReadChunk> {
  const located = await locate(root, tenant, chunk, limit);
  const records = await manifests.recordsOf(
    located.map((f, i) =>
      f.file === undefined ? undefined : { dir: path.dirname(f.file), invoice: chunk[i]!.invoiceNumber },
    ),
  );
  return { chunk, located, records };
}

/**
 * A read chunk as report lines (bytes): rows parsed and lines made ROWS_AT_ONCE at a time, so that
 * what a chunk holds while its lines are made is small and short-lived (a large report otherwise fills
 * the heap with rows that outlive a young-generation collection).
 */
function reportLines(root: string, tenant: string, read: ReadChunk, manifests: ManifestIndex): Buffer {
  const { chunk, located, records } = read;
  const out: Buffer[] = [];
  for (let from = 0; from < chunk.length; from += ROWS_AT_ONCE) {
    const to = Math.min(chunk.length, from + ROWS_AT_ONCE);
    const rows = manifests.rowsOf(records.slice(from, to));
    const lines: string[] = [];
    for (let i = from; i < to; i++) {
      const inv = chunk[i]!;
      const { file, sealedByRun } = located[i]!;
      const row = file === undefined ? undefined : rowOf(rows[i - from]!, file, inv.sealedSha256);
      const cells = reportRow(root, tenant, inv, { file, sealedByRun, row });
      lines.push(csvRecord(RUN_REPORT_COLUMNS.map((c) => cells[c])));
    }
    out.push(Buffer.from(lines.join('')));
  }
  return Buffer.concat(out);
}

/** The report's manifest cells for one invoice. */
function reportRow(
  root: string,
  tenant: string,
  inv: RunReportInvoice,
  { file, sealedByRun, row }: SealedFacts,
): Record<(typeof RUN_REPORT_COLUMNS)[number], string> {
  const sealedAt = row?.sealedAtUtc || row?.signingTime;
  return {
    invoiceNumber: inv.invoiceNumber,
    // The export's facts, else the manifest's (an invoice sealed before jobs carried them)
    customer: inv.customer ?? row?.customer ?? '',
    amount: inv.amount !== undefined ? String(inv.amount) : (row?.amount ?? ''),
    issueDate: inv.issueDate ?? row?.issueDate ?? '',
    status: inv.status,
    file: file === undefined ? '' : path.relative(path.join(root, tenant), file).split(path.sep).join('/'),
    sealedSha256: row?.sealedSha256 ?? inv.sealedSha256 ?? '',
    sealedAtJst: sealedAt ? toJst(sealedAt) : '',
    sealedAtUtc: sealedAt ? toUtc(sealedAt) : '',
    certificateSerial: row?.certificateSerial ?? '',
    level: row?.level ?? '',
    sealedByRun: inv.status === 'already sealed' ? (sealedByRun ?? row?.runId ?? '') : '',
    failureKind: inv.failure?.kind ?? '',
    failureReason: inv.failure?.reason ?? '',
    attempts: inv.failure?.attempts === undefined ? '' : String(inv.failure.attempts),
    exportFile: inv.exportFile === undefined ? '' : path.basename(inv.exportFile),
    line: inv.line === undefined ? '' : String(inv.line),
    registrationNumber: row?.registrationNumber ?? '',
  };
}

const BOM = '\uFEFF';

/** sealed-index reads in flight while a report is built */
const REPORT_READS = 32;
/** invoices of a list made into report rows at a time */
const REPORT_CHUNK = 2000;
/** manifest rows parsed (and report lines made from them) at a time within a chunk */
const ROWS_AT_ONCE = 100;

/** The invoices a chunk at a time in report order (a list is sorted here). */
async function* inReportOrder(
  invoices: readonly RunReportInvoice[] | RunReportChunks,
): AsyncGenerator<readonly RunReportInvoice[]> {
  if (Symbol.asyncIterator in invoices) {
    yield* invoices;
    return;
  }
  const sorted = [...invoices].sort(compareReportOrder);
  for (let i = 0; i < sorted.length; i += REPORT_CHUNK) yield sorted.slice(i, i + REPORT_CHUNK);
}

/**
 * Writes (or rewrites) the run's report under `root` and returns its files. Throws on a write error;
 * what it replaces is whole before and after.
 *
 * manifest.csv is written as its rows are made, a chunk of invoices at a time (their sealed-index
 * records and manifest rows looked up per chunk, the manifests of their folders indexed once, not
 * held), so a run of hundreds of thousands of invoices never has its report, or its folders'
 * manifests, in memory whole.
 */
export async function writeRunReport(
  root: string,
  input: RunReportInput | RunReportInput<RunReportChunks>,
): Promise<RunReportFiles> {
  const dir = runReportDir(root, input.tenant, input.runDate, input.runId);
  const files: RunReportFiles = {
    dir,
    manifest: path.join(dir, 'manifest.csv'),
    rejects: path.join(dir, 'rejects.csv'),
    summary: path.join(dir, 'summary.json'),
  };
  const listed = { sealed: 0, alreadySealed: 0, failed: 0 };
  const manifests = new ManifestIndex();
  // Each sealed invoice costs one sealed-index read: a few at once, in order, not one after another.
  const limit = pLimit(REPORT_READS);
  let previous: RunReportInvoice | undefined;
  /** The next chunk, checked, counted and read; undefined after the last. */
  const readNext = async (
    chunks: AsyncIterator<readonly RunReportInvoice[]>,
  ): Promise<ReadChunk | undefined> => {
    const next = await chunks.next();
    if (next.done) return undefined;
    for (const inv of next.value) {
      if (previous && compareReportOrder(previous, inv) > 0) {
        throw new OutboxError(
          `run ${input.runId}: invoice ${inv.invoiceNumber} handed to the report after ${previous.invoiceNumber}, out of order`,
        );
      }
      previous = inv;
      if (inv.status === 'sealed') listed.sealed++;
      else if (inv.status === 'already sealed') listed.alreadySealed++;
      else listed.failed++;
    }
    return readChunk(root, input.tenant, next.value, manifests, limit);
  };
  async function* manifestCsv(): AsyncGenerator<Buffer> {
    yield Buffer.from(BOM + csvRecord(RUN_REPORT_COLUMNS));
    const chunks = inReportOrder(input.invoices);
    try {
      // The next chunk is read (Redis, sealed index, manifests: I/O) while this one's lines are made
      // and written.
      let ahead = readNext(chunks);
      for (;;) {
        const read = await ahead;
        if (!read) break;
        ahead = readNext(chunks);
        ahead.catch(() => undefined); // awaited on the next turn; an error then ends the report
        yield reportLines(root, input.tenant, read, manifests);
      }
    } finally {
      await chunks.return(undefined);
    }
  }
  await writeReplacing(files.manifest, manifestCsv());

  const rejects = [...input.rejects].sort(
    (a, b) => natural.compare(a.exportFile, b.exportFile) || a.line - b.line,
  );
  const rejectLines = [BOM + csvRecord(RUN_REJECTS_COLUMNS)];
  for (const r of rejects) {
    rejectLines.push(csvRecord([r.exportFile, String(r.line), r.invoiceNumber ?? '', r.reason]));
  }
  await writeReplacing(files.rejects, Buffer.from(rejectLines.join('')));

  const summary: RunReportSummary = {
    runId: input.runId,
    job: input.job,
    tenant: input.tenant,
    runDate: input.runDate,
    ...(input.startedAt === undefined
      ? {}
      : { startedAt: { utc: toUtc(input.startedAt), jst: toJst(input.startedAt) } }),
    endedAt: { utc: toUtc(input.endedAt), jst: toJst(input.endedAt) },
    ...(input.level === undefined ? {} : { level: input.level }),
    counts: input.counts,
    listed: { ...listed, rejects: rejects.length },
    folder: path.relative(path.join(root, input.tenant), dir).split(path.sep).join('/'),
    files: { manifest: path.basename(files.manifest), rejects: path.basename(files.rejects) },
    writtenAt: new Date().toISOString(),
  };
  // Last: once it is there, the files it names are.
  await writeReplacing(files.summary, Buffer.from(JSON.stringify(summary, null, 2) + '\n'));
  return files;
}

/** The rows of a run report's CSV (manifest.csv or rejects.csv), as they were before excelSafe. */
export function readRunReportCsv(file: string): Promise<Record<string, string>[]> {
  return readExcelCsv(file);
}
