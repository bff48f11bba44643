// A data export's side of the producer: the export's invoices grouped, validated and computed (the
// export part), each valid one turned into the record its prepare thread renders (the seal part's
// InvoiceRecord), each invalid one into rejects naming the invoice, the field and the line.
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  readDataExport,
  validateInvoice,
  type DataExportSummary,
  type InvoiceProblem,
  type InvoiceTotals,
  type QualifiedInvoice,
  type RejectedDataRow,
  type RejectedRow,
} from '../export';
import type { JobDefinition } from '../jobs';
import type { InvoiceDocument } from '../pdf';
import { encodeInvoiceRecord, INVOICE_RECORD_VERSION, MAX_RECORD_BYTES, type RecordTemplate } from '../seal';
import { ProducerError } from './producer-error';

type DataExport = NonNullable<JobDefinition['export']['data']>;
type InvoiceProfile = NonNullable<JobDefinition['invoice']>;

/** A valid invoice of a data export, ready to be spooled and queued. */
export interface RenderedEntry {
  invoiceNumber: string;
  /** the header row's line */
  line: number;
  customer: string;
  /** tax included, whole yen */
  amount: number;
  issueDate: string;
  registrationNumber: string;
  /** what the prepare thread renders: its bytes are the job's source */
  record: Buffer;
}

/** One item of a data export: an invoice to queue, or a reject (an invoice's problems, or a row of none). */
export type DataExportEntry = { ok: true; entry: RenderedEntry } | { ok: false; rejected: RejectedRow[] };

const NAME_IN_DETAILS = '{name}';

/** The detail file of header file `file` in the two-files layout (`{name}` is its name less `.csv`). */
export function detailFileOf(file: string, details: string): string {
  const name = path.basename(file).replace(/\.csv$/i, '');
  return path.resolve(path.dirname(file), details.split(NAME_IN_DETAILS).join(name));
}

/** Is `file` a detail file by the layout's pattern (so never an export of its own)? */
export function isDetailFile(file: string, details: string): boolean {
  const pattern = details
    .split(NAME_IN_DETAILS)
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.+');
  return new RegExp(`^${pattern}$`, 'i').test(path.basename(file));
}

/** The files of one data export: the main file, then the detail file of the two-files layout. */
export function dataExportFiles(file: string, data: DataExport): string[] {
  return data.layout.kind === 'two-files' ? [file, detailFileOf(file, data.layout.details)] : [file];
}

/** The tenant's template as records carry it; the logo is read now, for its digest. */
export async function recordTemplateOf(job: JobDefinition, profile: InvoiceProfile): Promise<RecordTemplate> {
  const { logo: _logo, ...look } = profile.template;
  const template: RecordTemplate = {
    ...(look.title !== undefined && { title: look.title }),
    ...(look.accentColour !== undefined && { accentColour: look.accentColour }),
    ...(look.textColour !== undefined && { textColour: look.textColour }),
    ...(look.addressBlock !== undefined && { addressBlock: [...look.addressBlock] }),
    ...(look.footer !== undefined && { footer: look.footer }),
  };
  if (job.invoiceLogoPath === undefined) return template;
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(job.invoiceLogoPath);
  } catch (err) {
    throw new ProducerError(
      `job ${job.name}: invoice logo ${job.invoiceLogoPath} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      { cause: err },
    );
  }
  return { ...template, logoSha256: crypto.createHash('sha256').update(bytes).digest('hex') };
}

/** The renderer's input: the validated invoice with its computed figures, keys in a fixed order. */
export function invoiceDocumentOf(
  invoice: QualifiedInvoice,
  totals: InvoiceTotals,
  prices: InvoiceDocument['prices'],
): InvoiceDocument {
  return {
    invoiceNumber: invoice.invoiceNumber,
    issueDate: invoice.issueDate,
    ...(invoice.dueDate !== undefined && { dueDate: invoice.dueDate }),
    ...(invoice.transactionDate !== undefined && { transactionDate: invoice.transactionDate }),
    ...(invoice.transactionPeriod !== undefined && {
      transactionPeriod: { from: invoice.transactionPeriod.from, to: invoice.transactionPeriod.to },
    }),
    issuer: { name: invoice.issuerName, registrationNumber: invoice.registrationNumber },
    recipientName: invoice.recipientName,
    prices,
    lines: invoice.lines.map((l, i) => ({
      description: l.description,
      quantity: l.quantity,
      ...(l.unit !== undefined && { unit: l.unit }),
      unitPrice: l.unitPrice,
      amount: totals.lineAmounts[i]!,
      taxCategory: l.taxCategory,
      ...(l.transactionDate !== undefined && { transactionDate: l.transactionDate }),
    })),
    rates: totals.rates.map((r) => ({
      category: r.category,
      ratePercent: r.ratePercent,
      taxable: r.taxable,
      tax: r.tax,
      total: r.total,
    })),
    subtotal: totals.subtotal,
    tax: totals.tax,
    total: totals.total,
    ...(invoice.payee !== undefined && { payee: invoice.payee }),
  };
}

/** Where a row is, for a reject of an export of two files: the detail file is named. */
function inFile(main: string, file: string | undefined): string {
  return file === undefined || path.resolve(file) === path.resolve(main)
    ? ''
    : ` (in ${path.basename(file)})`;
}

/** An invoice's problems as rejects rows: one per problem, each naming the field. */
export function problemRows(main: string, problems: InvoiceProblem[]): RejectedRow[] {
  return problems.map((p) => ({
    line: p.line,
    invoiceNumber: p.invoiceNumber,
    reason: `${p.field}: ${p.reason}${inFile(main, p.file)}`,
  }));
}

function rowReject(main: string, row: RejectedDataRow): RejectedRow {
  return {
    line: row.line,
    ...(row.invoiceNumber !== undefined && { invoiceNumber: row.invoiceNumber }),
    reason: `${row.reason}${inFile(main, row.file)}`,
  };
}

export interface DataExportReadOptions {
  /** Told once every row is read, before the first invoice: the header rows, about the invoices to come. */
  onRowsRead?: (invoices: number) => void | Promise<void>;
  maxRowsInMemory?: number;
  tmpDir?: string;
}

/**
 * The export's items: every row that belongs to no invoice (first, as the reader yields them), then
 * each invoice, valid (its record built) or rejected with all its problems. Returns the reader's summary.
 */
export async function* dataExportEntries(
  file: string,
  job: JobDefinition,
  options: DataExportReadOptions = {},
): AsyncGenerator<DataExportEntry, DataExportSummary, undefined> {
  const data = job.export.data;
  const profile = job.invoice;
  if (data === undefined || profile === undefined) {
    throw new ProducerError(`job ${job.name}: not a data export job (export.data and invoice are required)`);
  }
  const template = await recordTemplateOf(job, profile);
  const stats = { spilledRuns: 0, largestBuffer: 0, largestInvoice: 0, headerRows: 0 };
  const reader = readDataExport(file, {
    layout:
      data.layout.kind === 'two-files'
        ? { kind: 'two-files', details: detailFileOf(file, data.layout.details) }
        : data.layout,
    mapping: { header: data.header, detail: data.detail },
    encoding: job.export.encoding,
    stats,
    ...(options.maxRowsInMemory !== undefined && { maxRowsInMemory: options.maxRowsInMemory }),
    ...(options.tmpDir !== undefined && { tmpDir: options.tmpDir }),
  });
  const validation = {
    defaults: {
      ...(profile.issuer.name !== undefined && { issuerName: profile.issuer.name }),
      ...(profile.issuer.registrationNumber !== undefined && {
        registrationNumber: profile.issuer.registrationNumber,
      }),
    },
    rules: { prices: profile.prices, taxRounding: profile.taxRounding, lineRounding: profile.lineRounding },
    ...(profile.taxCategoryValues !== undefined && { taxCategoryValues: profile.taxCategoryValues }),
    registrationIssuer: profile.issuer.kind,
  };
  let told = false;
  try {
    for (;;) {
      const next = await reader.next();
      if (next.done) return next.value;
      const item = next.value;
      if (!item.ok) {
        yield { ok: false, rejected: [rowReject(file, item.rejected)] };
        continue;
      }
      if (!told) {
        told = true;
        await options.onRowsRead?.(stats.headerRows);
      }
      const result = validateInvoice(item.invoice, validation);
      if (!result.ok) {
        yield { ok: false, rejected: problemRows(file, result.problems) };
        continue;
      }
      const { invoice, totals } = result;
      const record = encodeInvoiceRecord({
        v: INVOICE_RECORD_VERSION,
        document: invoiceDocumentOf(invoice, totals, profile.prices),
        template,
      });
      if (record.length > MAX_RECORD_BYTES) {
        yield {
          ok: false,
          rejected: [
            {
              line: invoice.line,
              invoiceNumber: invoice.invoiceNumber,
              reason: `lines: ${invoice.lines.length} lines make a record of ${record.length} bytes, over ${MAX_RECORD_BYTES}`,
            },
          ],
        };
        continue;
      }
      yield {
        ok: true,
        entry: {
          invoiceNumber: invoice.invoiceNumber,
          line: invoice.line,
          customer: invoice.recipientName,
          amount: totals.total,
          issueDate: invoice.issueDate,
          registrationNumber: invoice.registrationNumber,
          record,
        },
      };
    }
  } finally {
    await reader.return(undefined as never);
  }
}
