// One invoice's header and detail rows → a qualified invoice with its totals, or all of its problems.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DETAIL_FIELDS,
  HEADER_FIELDS,
  validateInvoice,
  type ValidateInvoiceResult,
} from '../../../src/export/qualified/validate-invoice';
import type { InvoiceProblem, RawInvoiceRows, RawRow } from '../../../src/export/qualified/types';
import { TEST_TIMEOUT_MS } from '../../helpers/timeouts';

const FILE = '/exports/invoices-2026-11.csv';
const NTA = 'T7000012050002'; // 国税庁's own 法人番号 as a registration number

function row(line: number, cells: Record<string, string>, file = FILE): RawRow {
  return { file, line, cells };
}

function header(cells: Record<string, string> = {}, line = 2): RawRow {
  return row(line, {
    invoiceNumber: 'INV-001',
    issuerName: '株式会社サクラ',
    registrationNumber: NTA,
    issueDate: '2026-11-30',
    transactionDate: '2026-11-28',
    recipientName: '株式会社モミジ',
    ...cells,
  });
}

function detail(line: number, cells: Record<string, string> = {}): RawRow {
  return row(line, {
    description: 'コピー用紙',
    quantity: '1',
    unitPrice: '1000',
    taxCategory: '10%',
    ...cells,
  });
}

function invoice(rows: Partial<RawInvoiceRows> = {}): RawInvoiceRows {
  return { invoiceNumber: 'INV-001', header: header(), details: [detail(3)], ...rows };
}

function problemsOf(result: ValidateInvoiceResult): InvoiceProblem[] {
  assert.equal(result.ok, false, 'the invoice was accepted');
  return result.ok ? [] : result.problems;
}

function only(result: ValidateInvoiceResult, field: string): InvoiceProblem {
  const problems = problemsOf(result);
  assert.deepEqual(
    problems.map((p) => p.field),
    [field],
    JSON.stringify(problems),
  );
  return problems[0]!;
}

test('the field lists name every logical field, header and detail', { timeout: TEST_TIMEOUT_MS }, () => {
  assert.deepEqual(
    [...HEADER_FIELDS],
    [
      'invoiceNumber',
      'issuerName',
      'registrationNumber',
      'issueDate',
      'transactionDate',
      'periodFrom',
      'periodTo',
      'recipientName',
      'dueDate',
      'payee',
      'subtotal',
      'tax',
      'total',
    ],
  );
  assert.deepEqual(
    [...DETAIL_FIELDS],
    ['description', 'quantity', 'unitPrice', 'taxCategory', 'transactionDate', 'unit'],
  );
});

test(
  'a valid mixed-rate invoice becomes a qualified invoice with its totals',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const result = validateInvoice(
      invoice({
        header: header({
          issueDate: '2026/11/30',
          dueDate: '2026/12/31',
          payee: 'みずほ銀行 本店 普通 1234567 カ）サクラ',
          subtotal: '¥9,194',
          tax: '895',
          total: '10,089円',
        }),
        details: [
          detail(3, { description: '緑茶', quantity: '3', unitPrice: '398', taxCategory: '※', unit: '本' }),
          detail(4, { description: 'コピー用紙', quantity: '2', unitPrice: '1,500', taxCategory: '10' }),
          detail(5, {
            description: '保守作業',
            quantity: '１',
            unitPrice: '￥５，０００',
            taxCategory: '標準',
          }),
        ],
      }),
    );
    assert.ok(result.ok, JSON.stringify(result));
    assert.deepEqual(result.invoice, {
      line: 2,
      invoiceNumber: 'INV-001',
      issuerName: '株式会社サクラ',
      registrationNumber: NTA,
      issueDate: '2026-11-30',
      transactionDate: '2026-11-28',
      recipientName: '株式会社モミジ',
      dueDate: '2026-12-31',
      payee: 'みずほ銀行 本店 普通 1234567 カ）サクラ',
      lines: [
        { line: 3, description: '緑茶', quantity: '3', unitPrice: '398', taxCategory: 'reduced', unit: '本' },
        { line: 4, description: 'コピー用紙', quantity: '2', unitPrice: '1500', taxCategory: 'standard' },
        { line: 5, description: '保守作業', quantity: '1', unitPrice: '5000', taxCategory: 'standard' },
      ],
      stated: { subtotal: 9194, tax: 895, total: 10089 },
    });
    assert.deepEqual([result.totals.subtotal, result.totals.tax, result.totals.total], [9194, 895, 10089]);
    assert.deepEqual(
      result.totals.rates.map((r) => [r.category, r.taxable, r.tax]),
      [
        ['standard', 8000, 800],
        ['reduced', 1194, 95],
      ],
    );
  },
);

test(
  'decimal quantities, a discount line, a period and per-line dates are kept',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const result = validateInvoice(
      invoice({
        header: header({ transactionDate: '', periodFrom: '2026/11/1', periodTo: '2026-11-30' }),
        details: [
          detail(3, {
            quantity: '2.5',
            unitPrice: '398',
            taxCategory: '8%',
            unit: 'kg',
            transactionDate: '2026/11/05',
          }),
          detail(4, { description: '値引き', quantity: '1', unitPrice: '-500', taxCategory: '10%' }),
          detail(5, { quantity: '1,000', unitPrice: '1.25', taxCategory: '10%' }),
        ],
      }),
    );
    assert.ok(result.ok, JSON.stringify(result));
    assert.deepEqual(result.invoice.transactionPeriod, { from: '2026-11-01', to: '2026-11-30' });
    assert.equal(result.invoice.transactionDate, undefined);
    assert.deepEqual(
      result.invoice.lines.map((l) => [l.quantity, l.unitPrice, l.transactionDate]),
      [
        ['2.5', '398', '2026-11-05'],
        ['1', '-500', undefined],
        ['1000', '1.25', undefined],
      ],
    );
    assert.deepEqual(result.totals.lineAmounts, [995, -500, 1250]);
    // standard 750 → 75; reduced 995 → 79.6 → 79
    assert.equal(result.totals.tax, 75 + 79);
  },
);

test(
  'the tenant profile supplies the issuer and registration number when the cells are empty or absent',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const { issuerName: _i, registrationNumber: _r, ...cells } = header().cells;
    const defaults = { issuerName: '株式会社サクラ', registrationNumber: 'T4011001098993' };
    const absent = validateInvoice(invoice({ header: row(2, cells) }), { defaults });
    assert.ok(absent.ok, JSON.stringify(absent));
    assert.equal(absent.invoice.registrationNumber, 'T4011001098993');
    assert.equal(absent.invoice.issuerName, '株式会社サクラ');

    const empty = validateInvoice(invoice({ header: header({ registrationNumber: ' ', issuerName: '' }) }), {
      defaults,
    });
    assert.ok(empty.ok, JSON.stringify(empty));
    assert.equal(empty.invoice.registrationNumber, 'T4011001098993');

    // The export's own cell wins over the default.
    const own = validateInvoice(invoice(), { defaults });
    assert.ok(own.ok);
    assert.equal(own.invoice.registrationNumber, NTA);

    const badDefault = only(
      validateInvoice(invoice({ header: row(2, cells) }), {
        defaults: { ...defaults, registrationNumber: '4011001098993' },
      }),
      'registrationNumber',
    );
    assert.match(
      badDefault.reason,
      /^the tenant profile's default "4011001098993" is missing the leading "T"/,
    );

    const none = problemsOf(validateInvoice(invoice({ header: row(2, cells) })));
    assert.deepEqual(
      none.map((p) => [p.field, p.reason]),
      [
        ['issuerName', 'is empty, and the tenant profile gives no default'],
        ['registrationNumber', 'is empty, and the tenant profile gives no default'],
      ],
    );
  },
);

test(
  "an individual issuer's registration number is checked for form only",
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const rows = invoice({ header: header({ registrationNumber: 'T1234567890123' }) });
    assert.match(only(validateInvoice(rows), 'registrationNumber').reason, /check digit/);
    assert.ok(validateInvoice(rows, { registrationIssuer: 'individual' }).ok);
  },
);

test(
  'every problem of an invoice is reported at once, each naming its field, line and file',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const result = validateInvoice(
      invoice({
        invoiceNumber: 'con',
        header: header({
          invoiceNumber: 'con',
          registrationNumber: 'T7000-0120-5000-2',
          issueDate: '2026-02-30',
          transactionDate: '2026.11.28',
          recipientName: '  ',
          dueDate: '31/12/2026',
          total: '12.5',
        }),
        details: [
          detail(3, { description: '' }),
          detail(4, { quantity: '0' }),
          detail(5, { quantity: '-1' }),
          detail(6, { quantity: '1,5' }),
          detail(7, { quantity: 'abc' }),
          detail(8, { unitPrice: 'abc' }),
          detail(9, { unitPrice: '1,20' }),
          detail(10, { unitPrice: '' }),
          detail(11, { taxCategory: '5%' }),
          detail(12, { taxCategory: '' }),
          detail(13, { transactionDate: '2026-13-01' }),
          detail(14, { description: '', quantity: '', taxCategory: '軽減税率' }),
        ],
      }),
    );
    const problems = problemsOf(result);
    assert.deepEqual(
      problems.map((p) => [p.field, p.line]),
      [
        ['invoiceNumber', 2],
        ['registrationNumber', 2],
        ['issueDate', 2],
        ['transactionDate', 2],
        ['recipientName', 2],
        ['dueDate', 2],
        ['total', 2],
        ['description', 3],
        ['quantity', 4],
        ['quantity', 5],
        ['quantity', 6],
        ['quantity', 7],
        ['unitPrice', 8],
        ['unitPrice', 9],
        ['unitPrice', 10],
        ['taxCategory', 11],
        ['taxCategory', 12],
        ['transactionDate', 13],
        ['description', 14],
        ['quantity', 14],
        ['taxCategory', 14],
      ],
    );
    for (const p of problems) {
      assert.equal(p.invoiceNumber, 'con');
      assert.equal(p.file, FILE);
      assert.ok(p.reason.length > 0);
    }
    const reason = (field: string, line: number) =>
      problems.find((p) => p.field === field && p.line === line)!.reason;
    assert.match(reason('invoiceNumber', 2), /reserved Windows device name/);
    assert.match(reason('registrationNumber', 2), /hyphens or spaces/);
    assert.match(reason('issueDate', 2), /"2026-02-30" is not a real date/);
    assert.match(
      reason('transactionDate', 2),
      /"2026\.11\.28" is not a real date as YYYY-MM-DD or YYYY\/MM\/DD/,
    );
    assert.equal(reason('recipientName', 2), 'is empty');
    assert.match(reason('total', 2), /"12\.5" is not a whole-yen amount/);
    assert.equal(reason('description', 3), 'is empty');
    assert.equal(reason('quantity', 4), '"0" is not positive');
    assert.match(reason('quantity', 5), /"-1" is not a positive decimal/);
    assert.match(reason('quantity', 6), /"1,5" has a comma that is not a thousands separator/);
    assert.match(reason('quantity', 7), /"abc" is not a positive decimal/);
    assert.match(reason('unitPrice', 8), /"abc" is not a yen amount/);
    assert.match(reason('unitPrice', 9), /"1,20" has a comma that is not a thousands separator/);
    assert.equal(reason('unitPrice', 10), 'is empty');
    assert.match(
      reason('taxCategory', 11),
      /^"5%" is not a tax category \(accepted: "10", "10%", "標準", "8", "8%"/,
    );
    assert.match(reason('taxCategory', 12), /^is empty \(accepted: /);
    assert.match(reason('taxCategory', 14), /"軽減税率" is not a tax category/);
  },
);

test(
  'an invoice without a header, with two headers, or without lines is refused',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const headerless = problemsOf(
      validateInvoice({ invoiceNumber: 'INV-001', details: [detail(7), detail(8)] }),
    );
    assert.deepEqual(
      headerless.map((p) => [p.field, p.line, p.reason]),
      [['header', 7, 'no header row carries this invoice number (only detail rows do)']],
    );

    const twice = only(
      validateInvoice(invoice({ extraHeaders: [row(40, header().cells, '/exports/invoices-2026-12.csv')] })),
      'header',
    );
    assert.equal(twice.line, 40);
    assert.equal(twice.file, '/exports/invoices-2026-12.csv');
    assert.equal(twice.reason, `a second header row for this invoice (the first is at line 2 of ${FILE})`);

    const empty = only(validateInvoice(invoice({ details: [] })), 'lines');
    assert.deepEqual([empty.line, empty.reason], [2, 'the invoice has no detail rows']);
  },
);

test(
  'stated totals that differ from the computed ones name both numbers',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const rows = invoice({
      header: header({ subtotal: '1,999', tax: '160', total: '2,159' }),
      details: [detail(3, { unitPrice: '1999', taxCategory: '8' })],
    });
    // Floored (the default), 1,999 × 8 % = 159.92 is 159: the stated tax and total rounded up.
    const problems = problemsOf(validateInvoice(rows));
    assert.deepEqual(
      problems.map((p) => [p.field, p.line, p.reason]),
      [
        [
          'tax',
          2,
          'states 160 yen but the lines come to 159 yen (tax floor once per rate, lines floor, prices excluding tax)',
        ],
        [
          'total',
          2,
          'states 2,159 yen but the lines come to 2,158 yen (tax floor once per rate, lines floor, prices excluding tax)',
        ],
      ],
    );
    // With the tenant's rule of rounding, the same totals are right.
    assert.ok(validateInvoice(rows, { rules: { taxRounding: 'round' } }).ok);
  },
);

test('the tax category values can be replaced by the tenant', { timeout: TEST_TIMEOUT_MS }, () => {
  const rows = invoice({ details: [detail(3, { taxCategory: 'A' }), detail(4, { taxCategory: 'ｂ' })] });
  const taxCategoryValues = { A: 'standard', b: 'reduced' } as const;
  const result = validateInvoice(rows, { taxCategoryValues });
  assert.ok(result.ok, JSON.stringify(result));
  assert.deepEqual(
    result.invoice.lines.map((l) => l.taxCategory),
    ['standard', 'reduced'],
  );
  // The defaults are replaced, not extended.
  const reason = only(validateInvoice(invoice(), { taxCategoryValues }), 'taxCategory').reason;
  assert.equal(reason, '"10%" is not a tax category (accepted: "A", "b")');
});

test(
  'dates: a period needs both ends in order, and some transaction date is required',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const oneEnd = only(
      validateInvoice(invoice({ header: header({ transactionDate: '', periodFrom: '2026-11-01' }) })),
      'periodTo',
    );
    assert.match(oneEnd.reason, /the other end of the period is given/);

    const reversed = only(
      validateInvoice(invoice({ header: header({ periodFrom: '2026-11-30', periodTo: '2026-11-01' }) })),
      'periodTo',
    );
    assert.equal(reversed.reason, "2026-11-01 is before the period's start, 2026-11-30");

    const undated = only(
      validateInvoice(invoice({ header: header({ transactionDate: '' }) })),
      'transactionDate',
    );
    assert.equal(undated.line, 2);
    assert.match(undated.reason, /give the transaction date, the period/);

    // Dates on every detail row are enough.
    const perLine = validateInvoice(
      invoice({
        header: header({ transactionDate: '' }),
        details: [detail(3, { transactionDate: '2026-11-02' })],
      }),
    );
    assert.ok(perLine.ok, JSON.stringify(perLine));

    const leap = only(validateInvoice(invoice({ header: header({ issueDate: '2025-02-29' }) })), 'issueDate');
    assert.match(leap.reason, /"2025-02-29" is not a real date/);
    assert.ok(validateInvoice(invoice({ header: header({ issueDate: '2028-02-29' }) })).ok);
  },
);

test(
  'an amount beyond Number.MAX_SAFE_INTEGER is a problem of its line, not a crash',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const problem = only(
      validateInvoice(
        invoice({ details: [detail(3), detail(4, { quantity: '1000000000', unitPrice: '10000000000' })] }),
      ),
      'unitPrice',
    );
    assert.equal(problem.line, 4);
    assert.match(
      problem.reason,
      /^line 4: the amount, quantity × unit price \(10000000000000000000 yen\) is beyond 9007199254740991/,
    );
  },
);
