// Amount and date cells in the shapes Japanese exports write them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIsoDate, parseYen } from '../../src/export/row-schema';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

test(
  'parseYen accepts plain, grouped, yen-signed and full-width amounts',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    const cases: [string, number][] = [
      ['12345', 12345],
      ['12,345', 12345],
      ['¥12,345', 12345],
      ['￥12,345', 12345],
      ['￥１２，３４５', 12345],
      ['１２３４５', 12345],
      ['\\12,345', 12345], // CP932's 0x5C, the yen sign, decodes as a backslash
      ['12,345円', 12345],
      ['1,234,567', 1234567],
      ['0', 0],
      ['-500', -500],
      ['-¥1,000', -1000],
      ['¥-1,000', -1000],
      ['－１，０００', -1000],
    ];
    for (const [cell, yen] of cases) assert.equal(parseYen(cell), yen, cell);
  },
);

test(
  'parseYen refuses decimals, bad grouping, other currencies and unsafe integers',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    for (const cell of [
      '12.5',
      '12,34',
      '1,2345',
      ',123',
      '123,',
      '$100',
      '1e3',
      'abc',
      '',
      '¥',
      '--1',
      '-¥-1',
      '99999999999999999',
    ]) {
      assert.equal(parseYen(cell), undefined, cell);
    }
  },
);

test(
  'parseIsoDate normalises YYYY/MM/DD and refuses dates that do not exist',
  { timeout: TEST_TIMEOUT_MS },
  () => {
    assert.equal(parseIsoDate('2024-04-01'), '2024-04-01');
    assert.equal(parseIsoDate('2024/04/01'), '2024-04-01');
    assert.equal(parseIsoDate('2024/4/1'), '2024-04-01');
    assert.equal(parseIsoDate('２０２４／０４／０１'), '2024-04-01');
    assert.equal(parseIsoDate('2024-02-29'), '2024-02-29');
    for (const cell of [
      '2023-02-29',
      '2024-13-01',
      '2024-04-31',
      '2024-04/01',
      '24-04-01',
      '2024年4月1日',
      '',
    ]) {
      assert.equal(parseIsoDate(cell), undefined, cell);
    }
  },
);
