// Consumption tax of a qualified invoice: lines to whole yen, then one rounding per rate per invoice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeTotals, InvoiceAmountError } from '../../../src/export/qualified/tax';
import type { QualifiedInvoiceLine, TaxCategory, YenRounding } from '../../../src/export/qualified/types';
import { TEST_TIMEOUT_MS } from '../../helpers/timeouts';

function line(quantity: string, unitPrice: string, taxCategory: TaxCategory, at = 2): QualifiedInvoiceLine {
  return { line: at, description: 'item', quantity, unitPrice, taxCategory };
}

function lines(...specs: [string, string, TaxCategory][]): { lines: QualifiedInvoiceLine[] } {
  return { lines: specs.map(([q, p, c], i) => line(q, p, c, i + 2)) };
}

test(
  'a mixed-rate invoice: 10 % and 8 % lines, rates in the order standard, reduced',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const totals = computeTotals(
      lines(['3', '398', 'reduced'], ['2', '1500', 'standard'], ['1', '5000', 'standard']),
    );
    assert.deepEqual(totals, {
      lineAmounts: [1194, 3000, 5000],
      rates: [
        { category: 'standard', ratePercent: 10, taxable: 8000, tax: 800, total: 8800 },
        // 1,194 × 8 % = 95.52 → 95
        { category: 'reduced', ratePercent: 8, taxable: 1194, tax: 95, total: 1289 },
      ],
      subtotal: 9194,
      tax: 895,
      total: 10089,
    });
  },
);

test(
  'tax rounding: 1,999 yen at 8 % is 159.92 → floor 159, round 160, ceil 160',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const expected: [YenRounding, number][] = [
      ['floor', 159],
      ['round', 160],
      ['ceil', 160],
    ];
    for (const [taxRounding, tax] of expected) {
      const totals = computeTotals(lines(['1', '1999', 'reduced']), { taxRounding });
      assert.equal(totals.tax, tax, taxRounding);
      assert.equal(totals.total, 1999 + tax, taxRounding);
    }
    // The default is floor.
    assert.equal(computeTotals(lines(['1', '1999', 'reduced'])).tax, 159);
  },
);

test(
  'x.5 rounds half up: 1,005 yen at 10 % is 100.5 → floor 100, round 101, ceil 101',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const tax = (taxRounding: YenRounding) =>
      computeTotals(lines(['1', '1005', 'standard']), { taxRounding }).tax;
    assert.deepEqual([tax('floor'), tax('round'), tax('ceil')], [100, 101, 101]);
    // 1,004 at 10 % (100.4) rounds down, so 'round' is not 'ceil'.
    assert.equal(computeTotals(lines(['1', '1004', 'standard']), { taxRounding: 'round' }).tax, 100);
  },
);

test(
  'line rounding: 1.5 × 333 yen = 499.5 → floor 499, round 500, ceil 500',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const amount = (lineRounding: YenRounding) =>
      computeTotals(lines(['1.5', '333', 'exempt']), { lineRounding }).lineAmounts[0];
    assert.deepEqual([amount('floor'), amount('round'), amount('ceil')], [499, 500, 500]);
  },
);

test(
  'prices including tax: 1,080 yen at 8 % holds 80 yen of tax; 1,000 at 10 % holds 90.9',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const reduced = computeTotals(lines(['1', '1080', 'reduced']), { prices: 'including' });
    assert.deepEqual(reduced.rates, [
      { category: 'reduced', ratePercent: 8, taxable: 1000, tax: 80, total: 1080 },
    ]);
    assert.deepEqual([reduced.subtotal, reduced.tax, reduced.total], [1000, 80, 1080]);

    // 1,000 × 10/110 = 90.909…: floor 90, round 91, ceil 91; the total stays what was billed.
    for (const [taxRounding, tax] of [
      ['floor', 90],
      ['round', 91],
      ['ceil', 91],
    ] as [YenRounding, number][]) {
      const totals = computeTotals(lines(['1', '1000', 'standard']), { prices: 'including', taxRounding });
      assert.deepEqual([totals.subtotal, totals.tax, totals.total], [1000 - tax, tax, 1000], taxRounding);
    }

    // Mixed including-basis lines: each rate's total is back-calculated once.
    const mixed = computeTotals(
      lines(['2', '550', 'standard'], ['1', '1080', 'reduced'], ['3', '216', 'reduced']),
      {
        prices: 'including',
      },
    );
    // standard 1,100 → tax 100; reduced 1,080 + 648 = 1,728 → 1,728 × 8/108 = 128
    assert.deepEqual(
      mixed.rates.map((r) => [r.category, r.taxable, r.tax, r.total]),
      [
        ['standard', 1000, 100, 1100],
        ['reduced', 1600, 128, 1728],
      ],
    );
    assert.equal(mixed.total, 2828);
  },
);

test('a discount line lowers its rate before the tax is taken', { timeout: TEST_TIMEOUT_MS }, () => {
  const totals = computeTotals(
    lines(['3', '1000', 'standard'], ['1', '-500', 'standard'], ['1', '1999', 'reduced']),
  );
  assert.deepEqual(totals.lineAmounts, [3000, -500, 1999]);
  assert.deepEqual(
    totals.rates.map((r) => [r.category, r.taxable, r.tax]),
    [
      ['standard', 2500, 250],
      ['reduced', 1999, 159],
    ],
  );
  assert.equal(totals.total, 2500 + 250 + 1999 + 159);
});

test(
  'negative amounts round by size, keeping their sign: floor is toward zero',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const amount = (lineRounding: YenRounding) =>
      computeTotals(lines(['1', '-29.9', 'exempt']), { lineRounding }).lineAmounts[0];
    assert.deepEqual([amount('floor'), amount('round'), amount('ceil')], [-29, -30, -30]);
    assert.equal(
      computeTotals(lines(['1', '-29.5', 'exempt']), { lineRounding: 'round' }).lineAmounts[0],
      -30,
    );
    assert.equal(
      computeTotals(lines(['1', '-29.4', 'exempt']), { lineRounding: 'round' }).lineAmounts[0],
      -29,
    );

    // A credit note whose reduced rate is all negative: −1,999 × 8 % = −159.92 → −159 floored.
    const credit = computeTotals(lines(['1', '-1999', 'reduced']));
    assert.deepEqual([credit.subtotal, credit.tax, credit.total], [-1999, -159, -2158]);
  },
);

test(
  'decimal quantities are exact where floats are not (1.15 × 100, 0.07 × 100)',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    // In floats 1.15 * 100 is 114.99999999999999 (floors to 114) and 0.07 * 100 is 7.000000000000001 (ceils to 8).
    assert.equal(1.15 * 100 < 115, true);
    const floored = computeTotals(
      lines(['1.15', '100', 'standard'], ['2.5', '398', 'reduced'], ['1.25', '12.5', 'exempt']),
    );
    assert.deepEqual(floored.lineAmounts, [115, 995, 15]);
    assert.deepEqual(
      computeTotals(lines(['0.07', '100', 'standard']), { lineRounding: 'ceil' }).lineAmounts,
      [7],
    );
    assert.deepEqual(computeTotals(lines(['0.333', '1000', 'standard'])).lineAmounts, [333]);
  },
);

test(
  'rounding once per rate differs from rounding each line: 7 × 99 yen at 8 % is 55 yen, not 49',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const specs: [string, string, TaxCategory][] = Array.from({ length: 7 }, () => ['1', '99', 'reduced']);
    const totals = computeTotals(lines(...specs));
    // Per line: 99 × 8 % = 7.92 → 7, seven times: 49 (not allowed on a qualified invoice).
    const perLine = 7 * Math.floor((99 * 8) / 100);
    assert.equal(perLine, 49);
    // Per rate: 693 × 8 % = 55.44 → 55.
    assert.equal(totals.tax, 55);
    assert.equal(totals.tax - perLine, 6);
    assert.deepEqual(totals.rates, [
      { category: 'reduced', ratePercent: 8, taxable: 693, tax: 55, total: 748 },
    ]);

    // Many lines, both rates: 40 × 33 yen at 10 % → 132 (per line 3.3 → 3, 120); 25 × 13 yen at 8 % → 26 (per line 1.04 → 1, 25).
    const many = computeTotals(
      lines(
        ...Array.from({ length: 40 }, (): [string, string, TaxCategory] => ['1', '33', 'standard']),
        ...Array.from({ length: 25 }, (): [string, string, TaxCategory] => ['1', '13', 'reduced']),
      ),
    );
    assert.deepEqual(
      many.rates.map((r) => [r.taxable, r.tax]),
      [
        [1320, 132],
        [325, 26],
      ],
    );
    assert.equal(many.tax, 158);
    assert.notEqual(many.tax, 40 * 3 + 25 * 1);
  },
);

test('exempt lines carry no tax, and only the rates present are listed', { timeout: TEST_TIMEOUT_MS }, () => {
  const totals = computeTotals(lines(['1', '10000', 'exempt'], ['1', '1000', 'standard']));
  assert.deepEqual(totals.rates, [
    { category: 'standard', ratePercent: 10, taxable: 1000, tax: 100, total: 1100 },
    { category: 'exempt', ratePercent: 0, taxable: 10000, tax: 0, total: 10000 },
  ]);
  assert.deepEqual([totals.subtotal, totals.tax, totals.total], [11000, 100, 11100]);
  assert.deepEqual(
    computeTotals(lines(['1', '500', 'exempt'])).rates.map((r) => r.category),
    ['exempt'],
  );
  assert.deepEqual(computeTotals({ lines: [] }), {
    lineAmounts: [],
    rates: [],
    subtotal: 0,
    tax: 0,
    total: 0,
  });
});

test(
  'amounts beyond Number.MAX_SAFE_INTEGER are refused, naming the line',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const isAmountError = (at: number) => (err: unknown) => {
      assert.ok(err instanceof InvoiceAmountError);
      assert.equal(err.line, at);
      assert.equal(err.field, 'amount');
      assert.match(err.message, new RegExp(`^line ${at}: `));
      assert.match(err.message, /9007199254740991/);
      return true;
    };
    // One line: 10^9 × 10^10 = 10^19 yen.
    assert.throws(
      () => computeTotals(lines(['1', '1', 'standard'], ['1000000000', '10000000000', 'standard'])),
      isAmountError(3),
    );
    // Each line fits, their sum does not.
    assert.throws(
      () => computeTotals(lines(['1', '5000000000000000', 'exempt'], ['1', '5000000000000000', 'exempt'])),
      isAmountError(3),
    );
    // Lines of different rates whose sum overflows.
    assert.throws(
      () => computeTotals(lines(['1', '5000000000000000', 'standard'], ['1', '5000000000000000', 'reduced'])),
      isAmountError(3),
    );
    // The lines fit, the total with 10 % tax does not.
    assert.throws(() => computeTotals(lines(['1', '9000000000000000', 'standard'])), isAmountError(2));
    // The largest safe amount itself is kept exactly.
    assert.equal(
      computeTotals(lines(['1', String(Number.MAX_SAFE_INTEGER), 'exempt'])).total,
      Number.MAX_SAFE_INTEGER,
    );
  },
);

test(
  'a quantity or price that is not a plain decimal is refused, naming the line and field',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    assert.throws(
      () => computeTotals(lines(['1', '1000', 'standard'], ['1,5', '1000', 'standard'])),
      (err: unknown) => err instanceof InvoiceAmountError && err.line === 3 && err.field === 'quantity',
    );
    assert.throws(
      () => computeTotals(lines(['1', '1e3', 'standard'])),
      (err: unknown) => err instanceof InvoiceAmountError && err.line === 2 && err.field === 'unitPrice',
    );
  },
);
