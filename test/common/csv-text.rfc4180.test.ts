// The one CSV writer: RFC 4180 quoting for every cell a core system or a customer name can hold, so a
// reader (csv-parse here, Excel for finance) gets back exactly the cells written, one record per row.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'csv-parse/sync';
import { csvLine, csvRecords } from '../../src/common/csv-text';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const AWKWARD = [
  'plain',
  '',
  'a,b',
  'say "hi"',
  '"',
  'line\nbreak',
  'carriage\rreturn',
  'crlf\r\nin a cell',
  ' spaced ',
  '株式会社さくら',
  '=HYPERLINK("x")',
  'tab\there',
];

test(
  'a field is quoted only when it holds a comma, a quote or a line break',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    for (const cell of AWKWARD) {
      const line = csvLine([cell]);
      assert.ok(line.endsWith('\r\n'), JSON.stringify(line));
      const body = line.slice(0, -2);
      const needsQuotes = /[",\r\n]/.test(cell);
      assert.equal(
        body.startsWith('"') && body.endsWith('"') && body.length >= 2,
        needsQuotes,
        JSON.stringify(cell),
      );
      if (needsQuotes) assert.equal(body, `"${cell.replace(/"/g, '""')}"`);
      else assert.equal(body, cell);
    }
  },
);

test('records read back as the cells written, one record per row', { timeout: TEST_TIMEOUT_MS }, () => {
  const rows = AWKWARD.map((cell, i) => [String(i), cell, `${cell}|${cell}`]);
  const text = csvRecords(rows);
  const read = parse(text, { relax_column_count: false }) as string[][];
  assert.deepEqual(read, rows);
  assert.equal(csvRecords([]), '');
  assert.equal(csvRecords(rows.slice(0, 2)), csvLine(rows[0]!) + csvLine(rows[1]!));
});
