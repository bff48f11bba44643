// What a valid export row is, as a zod schema over the row's trimmed cells: the invoice number is
// used as a file name, amounts come in the shapes Japanese exports write them, dates are normalised.
import { z } from 'zod';
import { invoiceNumberProblem } from '../common/invoice-number';

export { INVOICE_NUMBER_MAX_LENGTH } from '../common/invoice-number';

function quote(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
}

/**
 * Whole yen from `12345`, `12,345`, `¥12,345`, `￥１２，３４５`, `12,345円`, or negative with `-`
 * (credit notes). NFKC folds full-width digits, comma, yen and minus; `\` is accepted as the yen
 * sign because CP932 stores ¥ as the byte 0x5C, which decodes to a backslash.
 */
export function parseYen(cell: string): number | undefined {
  const s = cell.normalize('NFKC').replace(/\s+/g, '');
  const m = /^(-?)[¥\\]?(-?)(\d{1,3}(?:,\d{3})+|\d+)円?$/.exec(s);
  if (!m || (m[1] && m[2])) return undefined;
  const value = Number(m[3]!.replace(/,/g, ''));
  if (!Number.isSafeInteger(value)) return undefined;
  return m[1] || m[2] ? -value : value;
}

/** YYYY-MM-DD or YYYY/MM/DD (month and day may have one digit), a real calendar date → YYYY-MM-DD. */
export function parseIsoDate(cell: string): string | undefined {
  const m = /^(\d{4})([-/])(\d{1,2})\2(\d{1,2})$/.exec(cell.normalize('NFKC'));
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[3]), Number(m[4])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d)
    return undefined;
  return `${m[1]}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

const nonEmpty = () => z.string().min(1, { error: 'is empty', abort: true });

export const rowSchema = z.object({
  invoiceNumber: nonEmpty().superRefine((value, ctx) => {
    const problem = invoiceNumberProblem(value);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', input: value, message: problem });
  }),
  customerName: nonEmpty(),
  amount: nonEmpty().transform((cell, ctx) => {
    const yen = parseYen(cell);
    if (yen === undefined) {
      ctx.addIssue({ code: 'custom', input: cell, message: `${quote(cell)} is not a whole-yen amount` });
      return z.NEVER;
    }
    return yen;
  }),
  issueDate: nonEmpty()
    .transform((cell, ctx) => {
      const date = parseIsoDate(cell);
      if (date === undefined) {
        ctx.addIssue({
          code: 'custom',
          input: cell,
          message: `${quote(cell)} is not a date as YYYY-MM-DD or YYYY/MM/DD`,
        });
        return z.NEVER;
      }
      return date;
    })
    .optional(),
  pdfPath: nonEmpty(),
});

export type RowCells = z.input<typeof rowSchema>;
export type ValidRow = z.output<typeof rowSchema>;
