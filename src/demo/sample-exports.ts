// Sample core-system exports for the demo, the fixtures and the benchmark: distinct invoice PDFs plus
// a CSV that names them, with Japanese column headers as real exports have.
import fs from 'node:fs/promises';
import path from 'node:path';
import { renderSampleInvoice } from '../pdf';
import { writeExportCsv } from '../export';

export const SAMPLE_COLUMNS = {
  invoiceNumber: '請求書番号',
  customerName: '取引先名',
  amount: '請求金額',
  issueDate: '発行日',
  pdfPath: 'PDFファイル',
} as const;

const CUSTOMERS = [
  '株式会社青葉商事',
  '有限会社みどり工業',
  '東都物産株式会社',
  'Kansai Trading Co., Ltd.',
  '合同会社ひかり',
  '北斗システム株式会社',
];
const CUSTOMERS_ROMAJI = [
  'Aoba Shoji K.K.',
  'Midori Kogyo Y.K.',
  'Toto Bussan K.K.',
  'Kansai Trading Co., Ltd.',
  'Hikari G.K.',
  'Hokuto System K.K.',
];

export interface SampleExportOptions {
  dir: string;
  tenantName: string;
  invoicePrefix: string;
  count: number;
  encoding: 'utf8' | 'utf8-bom' | 'cp932';
  exportName?: string;
  issueDate?: string;
  /** append rows that must be rejected (bad amount, missing PDF, path traversal) */
  withBadRows?: boolean;
}

export async function writeSampleExport(
  o: SampleExportOptions,
): Promise<{ exportFile: string; invoices: number; badRows: number }> {
  const pdfDir = path.join(o.dir, 'pdf');
  await fs.mkdir(pdfDir, { recursive: true });
  const issueDate = o.issueDate ?? '2026-11-24';
  const rows: string[][] = [];
  for (let i = 1; i <= o.count; i++) {
    const invoiceNumber = `${o.invoicePrefix}-${String(i).padStart(6, '0')}`;
    const c = (i - 1) % CUSTOMERS.length;
    const amount = 10_000 + ((i * 7919) % 990_000);
    const pdf = await renderSampleInvoice({
      tenantName: o.tenantName,
      invoiceNumber,
      customerName: CUSTOMERS_ROMAJI[c]!,
      amount,
      issueDate,
      useObjectStreams: i % 2 === 0,
    });
    await fs.writeFile(path.join(pdfDir, `${invoiceNumber}.pdf`), pdf);
    rows.push([
      invoiceNumber,
      CUSTOMERS[c]!,
      amount.toLocaleString('en-US'),
      issueDate.replace(/-/g, '/'),
      `pdf/${invoiceNumber}.pdf`,
    ]);
  }
  let badRows = 0;
  if (o.withBadRows) {
    rows.push([
      `${o.invoicePrefix}-BAD-AMOUNT`,
      CUSTOMERS[0]!,
      '12万円',
      issueDate,
      `pdf/${o.invoicePrefix}-000001.pdf`,
    ]);
    rows.push([
      `${o.invoicePrefix}-TRAVERSAL`,
      CUSTOMERS[1]!,
      '5,000',
      issueDate,
      '../../secrets/other-tenant.pdf',
    ]);
    rows.push([`${o.invoicePrefix}-NO-PDF`, CUSTOMERS[2]!, '8,800', issueDate, 'pdf/missing.pdf']);
    badRows = 3;
  }
  const exportFile = path.join(o.dir, o.exportName ?? 'invoices.csv');
  const headers = [
    SAMPLE_COLUMNS.invoiceNumber,
    SAMPLE_COLUMNS.customerName,
    SAMPLE_COLUMNS.amount,
    SAMPLE_COLUMNS.issueDate,
    SAMPLE_COLUMNS.pdfPath,
  ];
  await writeExportCsv(exportFile, headers, rows, o.encoding);
  return { exportFile, invoices: o.count, badRows };
}
