// Invoices for the qualified-invoice renderer's tests and benchmark: a mixed-rate one whose figures the
// tests assert exactly, and long ones built from it. Figures are computed here as the export part
// would (tax per rate, rounded down, on the tax-excluded sum), so that they agree with each other.
import type { InvoiceDocument, InvoiceDocumentLine, InvoiceTemplate } from '../../src/pdf';

const RATES = { standard: 10, reduced: 8, exempt: 0 } as const;

/** rates, subtotal, tax and total of `lines` (prices tax excluded). */
export function withTotals(
  base: Omit<InvoiceDocument, 'rates' | 'subtotal' | 'tax' | 'total'>,
): InvoiceDocument {
  const rates = (['standard', 'reduced', 'exempt'] as const).flatMap((category) => {
    const lines = base.lines.filter((l) => l.taxCategory === category);
    if (lines.length === 0) return [];
    const taxable = lines.reduce((sum, l) => sum + l.amount, 0);
    const tax = Math.floor((taxable * RATES[category]) / 100);
    return [{ category, ratePercent: RATES[category], taxable, tax, total: taxable + tax }];
  });
  const subtotal = rates.reduce((sum, r) => sum + r.taxable, 0);
  const tax = rates.reduce((sum, r) => sum + r.tax, 0);
  return { ...base, rates, subtotal, tax, total: subtotal + tax };
}

export const MIXED_LINES: InvoiceDocumentLine[] = [
  {
    description: 'コピー用紙 A4 500枚入',
    quantity: '10',
    unit: '箱',
    unitPrice: '3200',
    amount: 32000,
    taxCategory: 'standard',
    transactionDate: '2025-04-03',
  },
  {
    description: '緑茶 ペットボトル 500ml',
    quantity: '24',
    unit: '本',
    unitPrice: '120',
    amount: 2880,
    taxCategory: 'reduced',
    transactionDate: '2025-04-10',
  },
  {
    description: '会議用弁当（幕の内）',
    quantity: '12',
    unit: '個',
    unitPrice: '850',
    amount: 10200,
    taxCategory: 'reduced',
    transactionDate: '2025-04-10',
  },
  {
    description: '収入印紙代',
    quantity: '1',
    unit: '式',
    unitPrice: '200',
    amount: 200,
    taxCategory: 'exempt',
    transactionDate: '2025-04-15',
  },
  {
    description:
      'オフィス什器の配送および設置作業一式（東京都千代田区丸の内のビル 12 階、エレベーター使用、旧什器の引取りを含む）',
    quantity: '1',
    unit: '式',
    unitPrice: '1500',
    amount: 1500,
    taxCategory: 'standard',
    transactionDate: '2025-04-22',
  },
];

/** 10%: 33,500 + 3,350; 8%: 13,080 + 1,046; exempt 200; total 51,176. */
export function mixedRateInvoice(): InvoiceDocument {
  return withTotals({
    invoiceNumber: 'INV-2025-0042',
    issueDate: '2025-04-30',
    dueDate: '2025-05-31',
    transactionPeriod: { from: '2025-04-01', to: '2025-04-30' },
    issuer: { name: '株式会社サンプル商事', registrationNumber: 'T1234567890123' },
    recipientName: '山田物産株式会社',
    prices: 'excluding',
    lines: MIXED_LINES,
    payee: 'みずほ銀行 丸の内支店 普通 1234567 カ）サンプルシヨウジ',
  });
}

/** `n` lines cycling through the mixed-rate invoice's lines. */
export function longInvoice(n: number): InvoiceDocument {
  const lines = Array.from({ length: n }, (_, i) => {
    const line = MIXED_LINES[i % MIXED_LINES.length]!;
    const day = String((i % 28) + 1).padStart(2, '0');
    return { ...line, description: `${i + 1}. ${line.description}`, transactionDate: `2025-04-${day}` };
  });
  return withTotals({ ...mixedRateInvoice(), invoiceNumber: `INV-2025-L${n}`, lines });
}

export const TEMPLATE: InvoiceTemplate = {
  accentColour: '#1f3a5f',
  textColour: '#222222',
  addressBlock: [
    '〒100-0005 東京都千代田区丸の内1-2-3',
    'TEL 03-1234-5678',
    'billing@sample-shoji.example.jp',
  ],
  footer:
    'この請求書は電子署名（eシール）付きで発行されています。改ざんを検知できるよう、PDF のままで保存してください。',
};
