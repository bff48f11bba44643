// The shapes of a data export (適格請求書 data: header and detail rows, not PDFs) as the export part reads
// it: rows grouped per invoice, then validated into a qualified invoice whose totals are computed here.
// The renderer (src/pdf) takes its own, already computed input; seal's task maps one to the other.

/** 10 % standard rate, 8 % reduced rate (軽減税率), or exempt (非課税・免税: no consumption tax). */
export type TaxCategory = 'standard' | 'reduced' | 'exempt';

export const TAX_RATE_PERCENT: Readonly<Record<TaxCategory, number>> = {
  standard: 10,
  reduced: 8,
  exempt: 0,
};

/** Rounding to whole yen: down, half up, or up. */
export type YenRounding = 'floor' | 'round' | 'ceil';

/** Whether the export's unit prices include consumption tax (税込) or not (税抜). */
export type PriceBasis = 'excluding' | 'including';

export interface TaxRules {
  /** The consumption tax of each rate, rounded once per rate per invoice. Default 'floor'. */
  taxRounding?: YenRounding;
  /** A line's amount (quantity × unit price) to whole yen. Default 'floor'. */
  lineRounding?: YenRounding;
  /** Default 'excluding'. */
  prices?: PriceBasis;
}

/** One data row as read: its export line and its cells by logical field name (after column mapping). */
export interface RawRow {
  /** the export file the row came from (absolute path) */
  file: string;
  /** line of that file where the row starts (header = line 1) */
  line: number;
  cells: Readonly<Record<string, string>>;
}

/** The rows of one invoice, grouped from anywhere in the export(s). */
export interface RawInvoiceRows {
  invoiceNumber: string;
  /** The invoice's header row; absent when only detail rows carry its number (a reject). */
  header?: RawRow;
  /** Its detail rows, in file order (file, then line). */
  details: RawRow[];
  /** More than one header row carried this number (a reject names them). */
  extraHeaders?: RawRow[];
}

export interface QualifiedInvoiceLine {
  /** the detail row's export line */
  line: number;
  description: string;
  /** a decimal as exported ("3", "1.5"); positive */
  quantity: string;
  /** yen as exported, a decimal ("1200", "12.5"); negative for a discount line */
  unitPrice: string;
  taxCategory: TaxCategory;
  /** YYYY-MM-DD, when details carry their own transaction date */
  transactionDate?: string;
  /** unit of the quantity ("個", "kg"), when given */
  unit?: string;
}

export interface QualifiedInvoice {
  /** the header row's export line */
  line: number;
  invoiceNumber: string;
  issuerName: string;
  /** T followed by 13 digits */
  registrationNumber: string;
  /** YYYY-MM-DD */
  issueDate: string;
  /** 取引年月日: one date, or the first and last day of the period the invoice covers */
  transactionDate?: string;
  transactionPeriod?: { from: string; to: string };
  recipientName: string;
  /** YYYY-MM-DD */
  dueDate?: string;
  /** payee bank details as one line of text ("みずほ銀行 本店 普通 1234567 カ）サクラ") */
  payee?: string;
  lines: QualifiedInvoiceLine[];
  /** totals the export states (whole yen); each must equal the computed one */
  stated?: { subtotal?: number; tax?: number; total?: number };
}

/** One tax rate's part of an invoice. */
export interface RateTotal {
  category: TaxCategory;
  ratePercent: number;
  /** the rate's lines, consumption tax excluded, whole yen */
  taxable: number;
  /** the rate's consumption tax, rounded once */
  tax: number;
  /** taxable + tax */
  total: number;
}

export interface InvoiceTotals {
  /** each line's amount in whole yen, in the basis of the prices, in line order */
  lineAmounts: number[];
  /** the rates the invoice has lines of, in the order standard, reduced, exempt */
  rates: RateTotal[];
  /** consumption tax excluded */
  subtotal: number;
  tax: number;
  /** consumption tax included: what is billed */
  total: number;
}

/** What is wrong with one invoice, naming the field (and the export line holding it). */
export interface InvoiceProblem {
  invoiceNumber: string;
  field: string;
  line: number;
  /** the export file holding that line (an invoice's rows may come from several files) */
  file?: string;
  reason: string;
}
