// Shared set-up for the data-export reader's tests: the Japanese headers and mapping a core system
// would use for both layouts, writers of export files, and a reader that collects every item and the summary.
import fs from 'node:fs';
import {
  readDataExport,
  type DataColumnMapping,
  type DataExportSummary,
  type ReadDataExportOptions,
  type RejectedDataRow,
} from '../../../src/export/qualified/read-data-export';
import type { RawInvoiceRows } from '../../../src/export/qualified/types';
import { csvRecords } from '../../../src/common/csv-text';
import { encodeCsvText } from '../../../src/export/csv-write';

export const TYPE_COLUMN = 'レコード区分';

export const HEADER_COLUMNS = ['請求書番号', '発行事業者', '登録番号', '発行日', '取引先', '合計'];
export const DETAIL_COLUMNS = ['請求書番号', '品名', '数量', '単価', '税区分'];
/** The one file of the record-type layout: the type, then header columns, then detail columns. */
export const COMBINED_COLUMNS = [TYPE_COLUMN, ...HEADER_COLUMNS, ...DETAIL_COLUMNS.slice(1)];

export const MAPPING: DataColumnMapping = {
  header: {
    invoiceNumber: '請求書番号',
    issuerName: '発行事業者',
    registrationNumber: '登録番号',
    issueDate: '発行日',
    recipientName: '取引先',
    total: '合計',
  },
  detail: {
    invoiceNumber: '請求書番号',
    description: '品名',
    quantity: '数量',
    unitPrice: '単価',
    taxCategory: '税区分',
  },
};

export const RECORD_TYPE = { kind: 'record-type', column: TYPE_COLUMN, header: 'H', detail: 'D' } as const;

export function headerCells(n: string): string[] {
  return [n, '株式会社サクラ商事', 'T1234567890123', '2026-11-30', `取引先${n}`, '1100'];
}

export function detailCells(n: string, k: number): string[] {
  return [n, `品目${k}, "特上"`, String(k + 1), '100', k % 2 === 0 ? '標準' : '軽減'];
}

/** A header row of the record-type layout. */
export function combinedHeader(n: string): string[] {
  return ['H', ...headerCells(n), '', '', '', ''];
}

/** A detail row of the record-type layout. */
export function combinedDetail(n: string, k: number): string[] {
  return ['D', n, '', '', '', '', '', ...detailCells(n, k).slice(1)];
}

export async function writeCsv(
  file: string,
  header: string[],
  rows: string[][],
  encoding: 'utf8' | 'cp932' = 'utf8',
): Promise<void> {
  await fs.promises.writeFile(file, encodeCsvText(csvRecords([header, ...rows]), encoding));
}

export interface ReadAll {
  invoices: RawInvoiceRows[];
  rejected: RejectedDataRow[];
  /** ok and rejected, in the order yielded */
  order: ('invoice' | 'rejected')[];
  summary: DataExportSummary;
}

/** Drains readDataExport, keeping the generator's return value (the summary). */
export async function readAll(file: string, options: ReadDataExportOptions): Promise<ReadAll> {
  const generator = readDataExport(file, options);
  const all: Omit<ReadAll, 'summary'> = { invoices: [], rejected: [], order: [] };
  for (;;) {
    const next = await generator.next();
    if (next.done) return { ...all, summary: next.value };
    if (next.value.ok) {
      all.invoices.push(next.value.invoice);
      all.order.push('invoice');
    } else {
      all.rejected.push(next.value.rejected);
      all.order.push('rejected');
    }
  }
}

/** A deterministic shuffle (xorshift), so that a failure can be rerun. */
export function shuffled<T>(items: T[], seed = 0x2545f491): T[] {
  const out = [...items];
  let x = seed;
  for (let i = out.length - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const j = (x >>> 0) % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
