// Shared set-up for the export tests: a temp folder with PDFs, the Japanese header and mapping a
// core system would use, and a reader that collects every row and the summary.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  readExport,
  type ColumnMapping,
  type ExportRow,
  type ExportSummary,
  type InvoiceRecord,
  type ReadExportOptions,
  type RejectedRow,
} from '../../src/export';

export const HEADERS = ['請求書番号', '取引先名', '請求金額', 'PDFファイル', '発行日'];

export const MAPPING: ColumnMapping = {
  invoiceNumber: '請求書番号',
  customerName: '取引先名',
  amount: '請求金額',
  pdfPath: 'PDFファイル',
  issueDate: '発行日',
};

export const MINIMAL_PDF = '%PDF-1.4\n%%EOF\n';

export async function tempDir(): Promise<string> {
  return fs.promises.mkdtemp(path.join(os.tmpdir(), 'sealer-export-test-'));
}

export async function removeDir(dir: string): Promise<void> {
  await fs.promises.rm(dir, { recursive: true, force: true });
}

/** Creates empty-ish PDFs at the given paths (relative to dir), making folders as needed. */
export async function writePdfs(dir: string, ...names: string[]): Promise<void> {
  for (const name of names) {
    await fs.promises.mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await fs.promises.writeFile(path.join(dir, name), MINIMAL_PDF);
  }
}

export interface ReadAll {
  rows: ExportRow[];
  accepted: InvoiceRecord[];
  rejected: RejectedRow[];
  summary: ExportSummary;
}

/** Drains readExport, keeping the generator's return value (the summary). */
export async function readAll(file: string, options: Partial<ReadExportOptions> = {}): Promise<ReadAll> {
  const generator = readExport(file, { mapping: MAPPING, ...options });
  const rows: ExportRow[] = [];
  for (;;) {
    const next = await generator.next();
    if (next.done) {
      return {
        rows,
        accepted: rows.flatMap((r) => (r.ok ? [r.invoice] : [])),
        rejected: rows.flatMap((r) => (r.ok ? [] : [r.rejected])),
        summary: next.value,
      };
    }
    rows.push(next.value);
  }
}
