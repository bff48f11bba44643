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
import { csvRecord, readExcelCsv, readManifest, MANIFEST_NAME, type ManifestRow } from './manifest';
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

export interface RunReportInput {
  runId: string;
  job: string;
  tenant: string;
  runDate: string;
  /** ISO instants */
  startedAt?: string;
  endedAt: string;
  level?: string;
  counts: Record<string, number>;
  invoices: RunReportInvoice[];
  rejects: RunReportReject[];
}

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

/** The manifests of the folders sealed files lie in, read and indexed by invoice once per folder
 * while a report is built (a run may list hundreds of thousands of invoices). */
class ManifestCache {
  private readonly byDir = new Map<string, Promise<Map<string, ManifestRow[]>>>();

  private rows(dir: string): Promise<Map<string, ManifestRow[]>> {
    let rows = this.byDir.get(dir);
    if (!rows) {
      rows = readManifest(path.join(dir, MANIFEST_NAME)).then(
        (list) => {
          const byInvoice = new Map<string, ManifestRow[]>();
          for (const r of list) {
            const same = byInvoice.get(r.invoiceNumber);
            if (same) same.push(r);
            else byInvoice.set(r.invoiceNumber, [r]);
          }
          return byInvoice;
        },
        (err: unknown) => {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map<string, ManifestRow[]>();
          throw err;
        },
      );
      this.byDir.set(dir, rows);
    }
    return rows;
  }

  /** The row that wrote this sealed file: by digest when known, else the invoice's last row. */
  async find(file: string, invoice: string, sealedSha256?: string): Promise<ManifestRow | undefined> {
    const rows = ((await this.rows(path.dirname(file))).get(invoice) ?? []).filter(
      (r) => r.file === path.basename(file),
    );
    return (
      (sealedSha256 === undefined ? undefined : rows.find((r) => r.sealedSha256 === sealedSha256)) ??
      rows.at(-1)
    );
  }
}

/** The report's manifest cells for one invoice. */
async function reportRow(
  root: string,
  tenant: string,
  inv: RunReportInvoice,
  manifests: ManifestCache,
): Promise<Record<(typeof RUN_REPORT_COLUMNS)[number], string>> {
  let file = inv.file;
  let sealedByRun: string | undefined;
  if (inv.status !== 'failed' && inv.sourceSha256 !== undefined) {
    const record = await findSealed(root, tenant, inv.invoiceNumber, inv.sourceSha256);
    file ??= record?.file;
    sealedByRun = record?.runId;
  }
  const row =
    file === undefined ? undefined : await manifests.find(file, inv.invoiceNumber, inv.sealedSha256);
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
  };
}

const BOM = '\uFEFF';

/** sealed-index reads in flight while a report is built */
const REPORT_READS = 32;
/** report rows made before they are turned into bytes */
const REPORT_CHUNK = 2048;

/**
 * Writes (or rewrites) the run's report under `root` and returns its files. Throws on a write error;
 * what it replaces is whole before and after.
 */
export async function writeRunReport(root: string, input: RunReportInput): Promise<RunReportFiles> {
  const dir = runReportDir(root, input.tenant, input.runDate, input.runId);
  const files: RunReportFiles = {
    dir,
    manifest: path.join(dir, 'manifest.csv'),
    rejects: path.join(dir, 'rejects.csv'),
    summary: path.join(dir, 'summary.json'),
  };
  const invoices = [...input.invoices].sort(
    (a, b) =>
      natural.compare(a.invoiceNumber, b.invoiceNumber) ||
      (a.line ?? 0) - (b.line ?? 0) ||
      (a.sourceSha256 ?? '').localeCompare(b.sourceSha256 ?? ''),
  );
  const manifests = new ManifestCache();
  // Each sealed invoice costs one sealed-index read: a few at once, in order, not one after another.
  // Rows are made a chunk at a time and kept as bytes, so a run of hundreds of thousands of invoices
  // holds its CSV once, not also as row objects and one string of the whole.
  const limit = pLimit(REPORT_READS);
  const pieces = [Buffer.from(BOM + csvRecord(RUN_REPORT_COLUMNS))];
  for (let i = 0; i < invoices.length; i += REPORT_CHUNK) {
    const lines = await Promise.all(
      invoices.slice(i, i + REPORT_CHUNK).map((inv) =>
        limit(async () => {
          const row = await reportRow(root, input.tenant, inv, manifests);
          return csvRecord(RUN_REPORT_COLUMNS.map((c) => row[c]));
        }),
      ),
    );
    pieces.push(Buffer.from(lines.join('')));
  }
  await writeReplacing(files.manifest, pieces);

  const rejects = [...input.rejects].sort(
    (a, b) => natural.compare(a.exportFile, b.exportFile) || a.line - b.line,
  );
  const rejectLines = [BOM + csvRecord(RUN_REJECTS_COLUMNS)];
  for (const r of rejects) {
    rejectLines.push(csvRecord([r.exportFile, String(r.line), r.invoiceNumber ?? '', r.reason]));
  }
  await writeReplacing(files.rejects, Buffer.from(rejectLines.join('')));

  const count = (s: RunReportStatus) => invoices.filter((i) => i.status === s).length;
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
    listed: {
      sealed: count('sealed'),
      alreadySealed: count('already sealed'),
      failed: count('failed'),
      rejects: rejects.length,
    },
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
