// Sample data exports (invoice data, not PDFs) for the demo, the tests and the benchmark: header and
// detail rows of qualified invoices with Japanese column headers, at mixed tax rates, the rows of one
// invoice spread through the file as core systems write them, and on request invoices that must be
// rejected, each for one named field.
import fs from 'node:fs/promises';
import path from 'node:path';
import { writeExportCsv } from '../export';
import { corporateCheckDigit } from '../export/qualified/registration-number';

/** The header and detail column maps of the samples (a job's export.data.header / .detail). */
export const SAMPLE_DATA_COLUMNS = {
  header: {
    invoiceNumber: '請求書番号',
    issueDate: '発行日',
    recipientName: '取引先名',
    registrationNumber: '登録番号',
    transactionDate: '取引日',
    dueDate: '支払期限',
    payee: '振込先',
    total: '請求金額',
  },
  detail: {
    invoiceNumber: '請求書番号',
    description: '品名',
    quantity: '数量',
    unitPrice: '単価',
    taxCategory: '税区分',
    unit: '単位',
  },
} as const;

const RECORD_TYPE = '種別';
const HEADER_COLUMNS = [
  RECORD_TYPE,
  ...Object.values(SAMPLE_DATA_COLUMNS.header),
  ...Object.values(SAMPLE_DATA_COLUMNS.detail).filter((c) => c !== '請求書番号'),
];

const CUSTOMERS = [
  '株式会社青葉商事',
  '有限会社みどり工業',
  '東都物産株式会社',
  '合同会社ひかり',
  '北斗システム株式会社',
];
const ITEMS: { description: string; unit: string; price: number; category: '10%' | '8%' | '非課税' }[] = [
  { description: 'コピー用紙 A4 500枚', unit: '箱', price: 2_480, category: '10%' },
  { description: '緑茶ティーバッグ 100袋', unit: '袋', price: 1_180, category: '8%' },
  { description: 'ミネラルウォーター 2L×6本', unit: '箱', price: 798, category: '8%' },
  { description: 'トナーカートリッジ（黒）', unit: '個', price: 12_800, category: '10%' },
  { description: '保守サービス料 11月分', unit: '式', price: 33_000, category: '10%' },
  { description: '収入印紙代（立替）', unit: '枚', price: 200, category: '非課税' },
  { description: '弁当（会議用）', unit: '個', price: 864, category: '8%' },
];

/** A registration number ("T" + 法人番号) of a fictitious corporation, with a right check digit. */
export function sampleRegistrationNumber(seed: number): string {
  const base = String(100_000_000_000 + ((seed * 7_919_191) % 899_999_999_999)).padStart(12, '0');
  return `T${corporateCheckDigit(base)}${base}`;
}

export interface SampleDataExportOptions {
  dir: string;
  invoicePrefix: string;
  count: number;
  encoding: 'utf8' | 'utf8-bom' | 'cp932';
  /** the issuer's registration number, printed on every invoice (a column of the export) */
  registrationNumber: string;
  exportName?: string;
  issueDate?: string;
  /** lines per invoice: 1 + (i mod this); default 6 (so up to 6) */
  maxLines?: number;
  /** append invoices that must be rejected: a wrong check digit, a bad tax category, a wrong total */
  withBadInvoices?: boolean;
}

export interface SampleDataExport {
  exportFile: string;
  /** the good invoices: each will be rendered and sealed */
  invoices: number;
  /** the invoices that must be rejected, by invoice number → the field at fault */
  badInvoices: Map<string, string>;
  /** data rows written (header and detail rows) */
  rows: number;
  /** each good invoice's total, tax included (what its manifest row and archive row must say) */
  totals: Map<string, number>;
}

/** Yen with grouping commas, as spreadsheet exports write it. */
function yen(n: number): string {
  return n.toLocaleString('en-US');
}

/**
 * One CSV, record-type layout (種別 H/D): every invoice's header row and detail rows, the detail rows of
 * each invoice written before and after other invoices' rows (a stride through the file), so that
 * grouping is needed. Prices exclude tax; tax is floored once per rate.
 */
export async function writeSampleDataExport(o: SampleDataExportOptions): Promise<SampleDataExport> {
  const issueDate = o.issueDate ?? '2026-11-30';
  const maxLines = o.maxLines ?? 6;
  const headers: string[][] = [];
  const details: string[][] = [];
  const totals = new Map<string, number>();
  const row = (cells: Record<string, string>) => HEADER_COLUMNS.map((c) => cells[c] ?? '');
  const invoice = (
    i: number,
    number: string,
    registration: string,
    category?: string,
    wrongTotal = false,
  ) => {
    const lines = 1 + (i % maxLines);
    const taxable: Record<string, number> = { '10%': 0, '8%': 0, 非課税: 0 };
    for (let l = 0; l < lines; l++) {
      const item = ITEMS[(i + l * 3) % ITEMS.length]!;
      const quantity = 1 + ((i * 31 + l * 7) % 12);
      taxable[item.category] = taxable[item.category]! + quantity * item.price;
      details.push(
        row({
          [RECORD_TYPE]: 'D',
          請求書番号: number,
          品名: item.description,
          数量: String(quantity),
          単価: yen(item.price),
          税区分: l === 0 && category !== undefined ? category : item.category,
          単位: item.unit,
        }),
      );
    }
    const total =
      taxable['10%']! +
      Math.floor(taxable['10%']! / 10) +
      taxable['8%']! +
      Math.floor((taxable['8%']! * 8) / 100) +
      taxable['非課税']!;
    totals.set(number, total);
    headers.push(
      row({
        [RECORD_TYPE]: 'H',
        請求書番号: number,
        発行日: issueDate,
        取引先名: CUSTOMERS[i % CUSTOMERS.length]!,
        登録番号: registration,
        取引日: issueDate,
        支払期限: '2026-12-31',
        振込先: 'みずほ銀行 本店 普通 1234567 カ）サンプル',
        請求金額: yen(wrongTotal ? total + 1 : total),
      }),
    );
  };
  for (let i = 1; i <= o.count; i++) {
    invoice(i, `${o.invoicePrefix}-${String(i).padStart(6, '0')}`, o.registrationNumber);
  }
  const badInvoices = new Map<string, string>();
  if (o.withBadInvoices) {
    const wrongDigit = `T${(Number(o.registrationNumber[1]) % 9) + 1}${o.registrationNumber.slice(2)}`;
    invoice(o.count + 1, `${o.invoicePrefix}-BAD-REGNO`, wrongDigit);
    badInvoices.set(`${o.invoicePrefix}-BAD-REGNO`, 'registrationNumber');
    invoice(o.count + 2, `${o.invoicePrefix}-BAD-TAX`, o.registrationNumber, '7%');
    badInvoices.set(`${o.invoicePrefix}-BAD-TAX`, 'taxCategory');
    invoice(o.count + 3, `${o.invoicePrefix}-BAD-TOTAL`, o.registrationNumber, undefined, true);
    badInvoices.set(`${o.invoicePrefix}-BAD-TOTAL`, 'total');
    for (const bad of badInvoices.keys()) totals.delete(bad);
  }
  // Headers first in reverse, then the details in a stride: one invoice's rows end up far apart.
  const stride = 7;
  const spread: string[][] = [];
  for (let s = 0; s < stride; s++) for (let k = s; k < details.length; k += stride) spread.push(details[k]!);
  const rows = [...headers.reverse(), ...spread];
  await fs.mkdir(o.dir, { recursive: true });
  const exportFile = path.join(o.dir, o.exportName ?? 'invoice-data.csv');
  await writeExportCsv(exportFile, HEADER_COLUMNS, rows, o.encoding);
  return { exportFile, invoices: o.count, badInvoices, rows: rows.length, totals };
}

/** A job's `export.data` for the samples. */
export function sampleDataExportSpec(): Record<string, unknown> {
  return {
    layout: { kind: 'record-type', column: RECORD_TYPE, header: 'H', detail: 'D' },
    header: { ...SAMPLE_DATA_COLUMNS.header },
    detail: {
      description: SAMPLE_DATA_COLUMNS.detail.description,
      quantity: SAMPLE_DATA_COLUMNS.detail.quantity,
      unitPrice: SAMPLE_DATA_COLUMNS.detail.unitPrice,
      taxCategory: SAMPLE_DATA_COLUMNS.detail.taxCategory,
      unit: SAMPLE_DATA_COLUMNS.detail.unit,
    },
  };
}

/** A job's `invoice` profile for the samples: the issuer and a template. */
export function sampleInvoiceProfile(issuerName: string, address: string[]): Record<string, unknown> {
  return {
    issuer: { name: issuerName },
    template: {
      accentColour: '#8a1c2b',
      addressBlock: address,
      footer: 'お振込手数料は貴社にてご負担ください。',
    },
  };
}
