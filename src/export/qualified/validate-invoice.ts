// One invoice's grouped rows → a qualified invoice (適格請求書) and its computed totals, or every problem
// it has, each naming the invoice, the field and the export line. Nothing is repaired silently: amounts
// may come in the shapes Japanese exports write them (grouping commas, ¥, full-width digits), but a
// registration number, a date or a tax category that is wrong is reported, not guessed.
import { invoiceNumberProblem } from '../../common/invoice-number';
import { parseIsoDate, parseYen } from '../row-schema';
import { registrationNumberProblem, type RegistrationIssuer } from './registration-number';
import { computeTotals, DEFAULT_TAX_RULES, InvoiceAmountError } from './tax';
import type {
  InvoiceProblem,
  InvoiceTotals,
  QualifiedInvoice,
  QualifiedInvoiceLine,
  RawInvoiceRows,
  RawRow,
  TaxCategory,
  TaxRules,
} from './types';
import { DETAIL_FIELDS as READER_DETAIL_FIELDS, HEADER_FIELDS } from './data-export-types';

/** The fields of a detail row that validation reads (the invoice number is the reader's join key). */
export const DETAIL_FIELDS = READER_DETAIL_FIELDS.filter(
  (f): f is Exclude<(typeof READER_DETAIL_FIELDS)[number], 'invoiceNumber'> => f !== 'invoiceNumber',
);
export { HEADER_FIELDS };
export type HeaderField = (typeof HEADER_FIELDS)[number];
export type DetailField = (typeof DETAIL_FIELDS)[number];

/**
 * How exports write a line's tax category, matched after NFKC and trimming (so "１０％" is "10%").
 * "※" and "*" are the marks 区分記載請求書 put on reduced-rate (軽減税率) items.
 */
export const DEFAULT_TAX_CATEGORY_VALUES: Readonly<Record<string, TaxCategory>> = {
  '10': 'standard',
  '10%': 'standard',
  標準: 'standard',
  '8': 'reduced',
  '8%': 'reduced',
  軽減: 'reduced',
  '※': 'reduced',
  '*': 'reduced',
  '0': 'exempt',
  非課税: 'exempt',
  免税: 'exempt',
  対象外: 'exempt',
};

export interface ValidateInvoiceOptions {
  /** From the tenant profile: used when the column is absent or the cell empty. */
  defaults?: { issuerName?: string; registrationNumber?: string };
  /** Default DEFAULT_TAX_RULES: tax floored once per rate, lines floored, prices excluding tax. */
  rules?: TaxRules;
  /** Replaces DEFAULT_TAX_CATEGORY_VALUES entirely (so a tenant can refuse "*"). Keys are NFKC-folded. */
  taxCategoryValues?: Record<string, TaxCategory>;
  /** Whose registration number it is: 'corporation' (default) also checks the 法人番号 check digit. */
  registrationIssuer?: RegistrationIssuer;
}

export type ValidateInvoiceResult =
  { ok: true; invoice: QualifiedInvoice; totals: InvoiceTotals } | { ok: false; problems: InvoiceProblem[] };

/** More decimal places than a quantity or a yen price has in any export we know of. */
const MAX_FRACTION_DIGITS = 6;

function quote(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
}

function yen(n: number): string {
  return `${n < 0 ? '-' : ''}${String(Math.abs(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',')}`;
}

function fold(value: string): string {
  return value.normalize('NFKC').trim();
}

type Parsed = { value: string } | { reason: string };

/**
 * A decimal cell ("1200", "1,200", "12.5", "１，２００") → its plain form ("1200", "12.5"). Grouping
 * commas are accepted because spreadsheet exports write them, but only in groups of three: "1,5" is a
 * European decimal comma, reported rather than read as 15. A price may carry ¥ (or "\", CP932's ¥) and
 * 円, and "-" for a discount.
 */
function parseDecimalCell(cell: string, kind: 'quantity' | 'price'): Parsed {
  const s = cell.normalize('NFKC').replace(/\s+/g, '');
  const m =
    kind === 'price'
      ? /^(-?)[¥\\]?(-?)(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?円?$/.exec(s)
      : /^()()(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?$/.exec(s);
  if (!m || (m[1] && m[2])) {
    if (/\d,\d/.test(s)) {
      return {
        reason: `${quote(cell)} has a comma that is not a thousands separator (write a decimal point)`,
      };
    }
    return kind === 'price'
      ? { reason: `${quote(cell)} is not a yen amount (e.g. 1200, 1,200, 12.5, -500)` }
      : { reason: `${quote(cell)} is not a positive decimal (e.g. 3, 1.5, 1,200)` };
  }
  const fraction = m[4] ?? '';
  if (fraction.length > MAX_FRACTION_DIGITS) {
    return { reason: `${quote(cell)} has more than ${MAX_FRACTION_DIGITS} decimal places` };
  }
  const whole = m[3]!.replace(/,/g, '').replace(/^0+(?=\d)/, '');
  if (whole.length > 16) return { reason: `${quote(cell)} is too large` };
  const negative = Boolean(m[1] || m[2]) && /[1-9]/.test(whole + fraction);
  return { value: `${negative ? '-' : ''}${whole}${fraction ? `.${fraction}` : ''}` };
}

/** Validates one invoice's rows; see the module comment. Reports every problem, not the first. */
export function validateInvoice(
  rows: RawInvoiceRows,
  options: ValidateInvoiceOptions = {},
): ValidateInvoiceResult {
  const problems: InvoiceProblem[] = [];
  const invoiceNumber = rows.invoiceNumber;
  const header = rows.header;
  const anchor = header ?? rows.details[0];
  const add = (row: RawRow | undefined, field: string, reason: string): void => {
    const problem: InvoiceProblem = { invoiceNumber, field, line: row?.line ?? 0, reason };
    if (row !== undefined) problem.file = row.file;
    problems.push(problem);
  };
  const cell = (row: RawRow, field: string): string => (row.cells[field] ?? '').trim();

  const numberProblem = invoiceNumberProblem(invoiceNumber);
  if (numberProblem !== undefined) add(anchor, 'invoiceNumber', numberProblem);

  if (header === undefined) {
    add(anchor, 'header', 'no header row carries this invoice number (only detail rows do)');
  }
  for (const extra of rows.extraHeaders ?? []) {
    const first =
      header === undefined
        ? ''
        : header.file === extra.file
          ? ` (the first is at line ${header.line})`
          : ` (the first is at line ${header.line} of ${header.file})`;
    add(extra, 'header', `a second header row for this invoice${first}`);
  }
  if (rows.details.length === 0) add(header, 'lines', 'the invoice has no detail rows');

  // Header fields.
  let issuerName = '';
  let registrationNumber = '';
  let issueDate = '';
  let transactionDate: string | undefined;
  let transactionPeriod: { from: string; to: string } | undefined;
  let recipientName = '';
  let dueDate: string | undefined;
  let payee: string | undefined;
  const stated: { subtotal?: number; tax?: number; total?: number } = {};
  let headerDateGiven = false;

  const date = (row: RawRow, field: string, required: boolean): string | undefined => {
    const text = cell(row, field);
    if (text === '') {
      if (required) add(row, field, 'is empty');
      return undefined;
    }
    const parsed = parseIsoDate(text);
    if (parsed === undefined) {
      add(row, field, `${quote(text)} is not a real date as YYYY-MM-DD or YYYY/MM/DD`);
    }
    return parsed;
  };

  if (header !== undefined) {
    issuerName = cell(header, 'issuerName') || (options.defaults?.issuerName ?? '').trim();
    if (issuerName === '') add(header, 'issuerName', 'is empty, and the tenant profile gives no default');

    const given = cell(header, 'registrationNumber');
    registrationNumber = given || (options.defaults?.registrationNumber ?? '').trim();
    if (registrationNumber === '') {
      add(header, 'registrationNumber', 'is empty, and the tenant profile gives no default');
    } else {
      const problem = registrationNumberProblem(registrationNumber, {
        issuer: options.registrationIssuer ?? 'corporation',
      });
      if (problem !== undefined) {
        add(header, 'registrationNumber', given ? problem : `the tenant profile's default ${problem}`);
      }
    }

    issueDate = date(header, 'issueDate', true) ?? '';
    transactionDate = date(header, 'transactionDate', false);
    const fromText = cell(header, 'periodFrom');
    const toText = cell(header, 'periodTo');
    headerDateGiven = cell(header, 'transactionDate') !== '' || fromText !== '' || toText !== '';
    const from = date(header, 'periodFrom', false);
    const to = date(header, 'periodTo', false);
    if ((fromText === '') !== (toText === '')) {
      add(
        header,
        fromText === '' ? 'periodFrom' : 'periodTo',
        'is empty, but the other end of the period is given',
      );
    } else if (from !== undefined && to !== undefined) {
      if (from > to) add(header, 'periodTo', `${to} is before the period's start, ${from}`);
      else transactionPeriod = { from, to };
    }

    recipientName = cell(header, 'recipientName');
    if (recipientName === '') add(header, 'recipientName', 'is empty');
    dueDate = date(header, 'dueDate', false);
    payee = cell(header, 'payee') || undefined;

    for (const field of ['subtotal', 'tax', 'total'] as const) {
      const text = cell(header, field);
      if (text === '') continue;
      const value = parseYen(text);
      if (value === undefined) add(header, field, `${quote(text)} is not a whole-yen amount`);
      else stated[field] = value;
    }
  }

  // Detail rows.
  const categories = new Map<string, TaxCategory>();
  for (const [key, category] of Object.entries(options.taxCategoryValues ?? DEFAULT_TAX_CATEGORY_VALUES)) {
    categories.set(fold(key), category);
  }
  // Listed by category (a Record puts integer-like keys such as "0" first, whatever the order written).
  const accepted = (['standard', 'reduced', 'exempt'] as const)
    .flatMap((category) =>
      [...categories].filter(([, c]) => c === category).map(([key]) => JSON.stringify(key)),
    )
    .join(', ');
  const lines: QualifiedInvoiceLine[] = [];
  let linesValid = true;
  let everyDetailDated = rows.details.length > 0;
  for (const row of rows.details) {
    const before = problems.length;
    const description = cell(row, 'description');
    if (description === '') add(row, 'description', 'is empty');

    let quantity = '';
    const quantityText = cell(row, 'quantity');
    if (quantityText === '') add(row, 'quantity', 'is empty');
    else {
      const parsed = parseDecimalCell(quantityText, 'quantity');
      if ('reason' in parsed) add(row, 'quantity', parsed.reason);
      else if (!/[1-9]/.test(parsed.value)) add(row, 'quantity', `${quote(quantityText)} is not positive`);
      else quantity = parsed.value;
    }

    let unitPrice = '';
    const priceText = cell(row, 'unitPrice');
    if (priceText === '') add(row, 'unitPrice', 'is empty');
    else {
      const parsed = parseDecimalCell(priceText, 'price');
      if ('reason' in parsed) add(row, 'unitPrice', parsed.reason);
      else unitPrice = parsed.value;
    }

    let taxCategory: TaxCategory = 'standard';
    const categoryText = cell(row, 'taxCategory');
    if (categoryText === '') add(row, 'taxCategory', `is empty (accepted: ${accepted})`);
    else {
      const category = categories.get(fold(categoryText));
      if (category === undefined)
        add(row, 'taxCategory', `${quote(categoryText)} is not a tax category (accepted: ${accepted})`);
      else taxCategory = category;
    }

    const lineDate = date(row, 'transactionDate', false);
    if (cell(row, 'transactionDate') === '') everyDetailDated = false;
    const unit = cell(row, 'unit');

    if (problems.length > before) {
      linesValid = false;
      continue;
    }
    const line: QualifiedInvoiceLine = { line: row.line, description, quantity, unitPrice, taxCategory };
    if (lineDate !== undefined) line.transactionDate = lineDate;
    if (unit !== '') line.unit = unit;
    lines.push(line);
  }

  // 取引年月日 is one of the things a qualified invoice must state: on the header, or on every line.
  if (header !== undefined && !headerDateGiven && !everyDetailDated && rows.details.length > 0) {
    add(
      header,
      'transactionDate',
      'is empty: give the transaction date, the period (periodFrom and periodTo), or a transactionDate on every detail row',
    );
  }

  let totals: InvoiceTotals | undefined;
  if (linesValid && lines.length > 0) {
    const rules = options.rules ?? {};
    try {
      totals = computeTotals({ lines }, rules);
    } catch (err) {
      if (!(err instanceof InvoiceAmountError)) throw err;
      const row = rows.details.find((detail) => detail.line === err.line);
      add(row, err.field === 'amount' ? 'unitPrice' : err.field, err.message);
    }
    if (totals !== undefined && header !== undefined) {
      const how =
        `tax ${rules.taxRounding ?? DEFAULT_TAX_RULES.taxRounding} once per rate, ` +
        `lines ${rules.lineRounding ?? DEFAULT_TAX_RULES.lineRounding}, prices ${rules.prices ?? DEFAULT_TAX_RULES.prices} tax`;
      for (const field of ['subtotal', 'tax', 'total'] as const) {
        const value = stated[field];
        if (value !== undefined && value !== totals[field]) {
          add(
            header,
            field,
            `states ${yen(value)} yen but the lines come to ${yen(totals[field])} yen (${how})`,
          );
        }
      }
    }
  }

  if (problems.length > 0 || header === undefined || totals === undefined) {
    return { ok: false, problems };
  }
  const invoice: QualifiedInvoice = {
    line: header.line,
    invoiceNumber,
    issuerName,
    registrationNumber,
    issueDate,
    recipientName,
    lines,
  };
  if (transactionDate !== undefined) invoice.transactionDate = transactionDate;
  if (transactionPeriod !== undefined) invoice.transactionPeriod = transactionPeriod;
  if (dueDate !== undefined) invoice.dueDate = dueDate;
  if (payee !== undefined) invoice.payee = payee;
  if (Object.keys(stated).length > 0) invoice.stated = stated;
  return { ok: true, invoice, totals };
}
