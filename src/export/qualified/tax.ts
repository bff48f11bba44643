// The consumption tax of a qualified invoice, in exact decimal arithmetic (BigInt, never floats): each
// line to whole yen, then per rate one sum and one rounding of its tax. Rounding each line's tax and
// adding them up is not allowed on a 適格請求書 (消費税法施行令第70条の10; 国税庁 インボイスQ&A 問57:
// 個々の商品ごとに消費税額等を計算し端数処理を行い、その合計額を記載することは認められません).
//
// Negative amounts (discount lines, a rate whose lines are all credits) round by their size and keep
// their sign: 'floor' is toward zero, 'ceil' away from zero, 'round' half away from zero. So −29.9 floors
// to −29, as Excel's ROUNDDOWN does ("rounds a number down, toward zero": support.microsoft.com, ROUNDDOWN
// function). Invoice software differs (the board FAQ on マイナス金額の端数処理 offers both ways and defaults
// to toward −∞); toward zero makes a 29.9 yen discount 29 yen off, as a 29.9 yen charge is 29 yen, so a
// discount line never takes more off than its own price says.
import { SealerError } from '../../common/errors';
import {
  TAX_RATE_PERCENT,
  type InvoiceTotals,
  type QualifiedInvoice,
  type RateTotal,
  type TaxCategory,
  type TaxRules,
  type YenRounding,
} from './types';

/**
 * A line whose amount, or a sum up to it, cannot be computed exactly (an amount beyond
 * Number.MAX_SAFE_INTEGER yen, or a quantity or price that is not a decimal). The message names the line;
 * the validator turns it into a problem of that line's row.
 */
export class InvoiceAmountError extends SealerError {
  /** the detail row's export line */
  readonly line: number;
  /** 'quantity', 'unitPrice', or 'amount' for a product or sum out of range */
  readonly field: string;

  constructor(message: string, details: { line: number; field: string }) {
    super(message);
    this.line = details.line;
    this.field = details.field;
  }
}

/** The rules computeTotals applies when a tenant names none. */
export const DEFAULT_TAX_RULES: Readonly<Required<TaxRules>> = {
  taxRounding: 'floor',
  lineRounding: 'floor',
  prices: 'excluding',
};

const CATEGORY_ORDER: readonly TaxCategory[] = ['standard', 'reduced', 'exempt'];
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
/** More digits than any real quantity or price has; keeps a hostile cell from costing a BigInt of MBs. */
const MAX_DECIMAL_LENGTH = 40;

/** A decimal as a scaled integer: value = units / 10^scale. */
interface Scaled {
  units: bigint;
  scale: number;
}

/** "-12.50" → { units: -1250n, scale: 2 }; only the plain form (no grouping, no sign but "-"). */
export function parseDecimal(text: string): Scaled | undefined {
  if (text.length > MAX_DECIMAL_LENGTH) return undefined;
  const m = /^(-?)([0-9]+)(?:\.([0-9]+))?$/.exec(text);
  if (!m) return undefined;
  const fraction = m[3] ?? '';
  const units = BigInt(`${m[2]}${fraction}`);
  return { units: m[1] ? -units : units, scale: fraction.length };
}

/** numerator / denominator (denominator > 0) to an integer by `mode`, symmetric about zero. */
export function divideRounded(numerator: bigint, denominator: bigint, mode: YenRounding): bigint {
  if (denominator <= 0n) throw new RangeError('denominator must be positive');
  const negative = numerator < 0n;
  const size = negative ? -numerator : numerator;
  let quotient = size / denominator;
  const remainder = size % denominator;
  if (mode === 'ceil' ? remainder > 0n : mode === 'round' ? 2n * remainder >= denominator : false) {
    quotient += 1n;
  }
  return negative ? -quotient : quotient;
}

function checkSafe(value: bigint, line: number, what: string): void {
  if (value > MAX_SAFE || value < -MAX_SAFE) {
    throw new InvoiceAmountError(
      `line ${line}: ${what} (${value} yen) is beyond ${Number.MAX_SAFE_INTEGER} yen, the largest amount kept exactly`,
      { line, field: 'amount' },
    );
  }
}

/**
 * The invoice's line amounts, per-rate totals and sums. Prices 'excluding': a rate's taxable amount is the
 * sum of its lines and its tax that × rate/100, rounded once. Prices 'including': the sum of its lines is
 * the rate's tax-included total T, its tax T × rate/(100+rate) rounded once, taxable T − tax. Exempt
 * lines carry no tax. Throws InvoiceAmountError naming the line when an amount cannot be kept exactly.
 */
export function computeTotals(invoice: Pick<QualifiedInvoice, 'lines'>, rules: TaxRules = {}): InvoiceTotals {
  const taxRounding = rules.taxRounding ?? DEFAULT_TAX_RULES.taxRounding;
  const lineRounding = rules.lineRounding ?? DEFAULT_TAX_RULES.lineRounding;
  const prices = rules.prices ?? DEFAULT_TAX_RULES.prices;

  const lineAmounts: number[] = [];
  const sums = new Map<TaxCategory, bigint>();
  let all = 0n;
  for (const line of invoice.lines) {
    const quantity = parseDecimal(line.quantity);
    if (quantity === undefined) {
      throw new InvoiceAmountError(
        `line ${line.line}: quantity ${JSON.stringify(line.quantity)} is not a decimal`,
        {
          line: line.line,
          field: 'quantity',
        },
      );
    }
    const price = parseDecimal(line.unitPrice);
    if (price === undefined) {
      throw new InvoiceAmountError(
        `line ${line.line}: unit price ${JSON.stringify(line.unitPrice)} is not a decimal`,
        { line: line.line, field: 'unitPrice' },
      );
    }
    const amount = divideRounded(
      quantity.units * price.units,
      10n ** BigInt(quantity.scale + price.scale),
      lineRounding,
    );
    checkSafe(amount, line.line, 'the amount, quantity × unit price');
    const sum = (sums.get(line.taxCategory) ?? 0n) + amount;
    checkSafe(sum, line.line, `the sum of the ${line.taxCategory}-rate lines up to this one`);
    sums.set(line.taxCategory, sum);
    all += amount;
    checkSafe(all, line.line, 'the sum of the lines up to this one');
    lineAmounts.push(Number(amount));
  }

  const rates: RateTotal[] = [];
  let subtotal = 0n;
  let tax = 0n;
  for (const category of CATEGORY_ORDER) {
    const sum = sums.get(category);
    if (sum === undefined) continue;
    const ratePercent = TAX_RATE_PERCENT[category];
    const rate = BigInt(ratePercent);
    let rateTax: bigint;
    let taxable: bigint;
    if (ratePercent === 0) {
      rateTax = 0n;
      taxable = sum;
    } else if (prices === 'excluding') {
      rateTax = divideRounded(sum * rate, 100n, taxRounding);
      taxable = sum;
    } else {
      rateTax = divideRounded(sum * rate, 100n + rate, taxRounding);
      taxable = sum - rateTax;
    }
    subtotal += taxable;
    tax += rateTax;
    rates.push({
      category,
      ratePercent,
      taxable: Number(taxable),
      tax: Number(rateTax),
      total: Number(taxable + rateTax),
    });
  }
  const total = subtotal + tax;
  // Including-basis totals equal the sum of the lines, already checked; excluding adds at most 10 %.
  const lastLine = invoice.lines.at(-1)?.line ?? 0;
  checkSafe(total, lastLine, 'the invoice total with consumption tax');
  return { lineAmounts, rates, subtotal: Number(subtotal), tax: Number(tax), total: Number(total) };
}
