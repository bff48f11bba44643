// The rejects file: created only on the first reject, UTF-8 with BOM, RFC 4180 quoting, and cells
// that Excel would run as formulas kept as text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { RejectsWriter } from '../../src/export';
import { removeDir, tempDir } from './export-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

test('no rejects: close returns 0 and no file is created', { timeout: TEST_TIMEOUT_MS }, async () => {
  const dir = await tempDir();
  try {
    const file = path.join(dir, 'rejects.csv');
    const writer = new RejectsWriter(file);
    assert.equal(await writer.close(), 0);
    assert.equal(fs.existsSync(file), false);
  } finally {
    await removeDir(dir);
  }
});

test(
  'rejects are written with a BOM, a header, quoting and formula-safe cells',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    try {
      const file = path.join(dir, 'rejects.csv');
      const writer = new RejectsWriter(file);
      await writer.add({
        line: 3,
        invoiceNumber: 'INV-1',
        reason: '請求金額 (amount): "1,2" is not a whole-yen amount',
      });
      await writer.add({ line: 7, reason: '取引先名 (customerName): is empty\nsecond line' });
      await writer.add({ line: 9, invoiceNumber: '=HYPERLINK("http://x")', reason: '-bad' });
      assert.equal(await writer.close(), 3);
      assert.equal(await writer.close(), 3);
      await assert.rejects(writer.add({ line: 10, reason: 'late' }), /already closed/);

      const text = await fs.promises.readFile(file, 'utf8');
      assert.ok(text.startsWith('\ufeffline,invoiceNumber,reason\r\n'));
      assert.ok(text.includes('3,INV-1,"請求金額 (amount): ""1,2"" is not a whole-yen amount"\r\n'));
      const back = parse(text, { bom: true, columns: true }) as Record<string, string>[];
      assert.deepEqual(back, [
        { line: '3', invoiceNumber: 'INV-1', reason: '請求金額 (amount): "1,2" is not a whole-yen amount' },
        { line: '7', invoiceNumber: '', reason: '取引先名 (customerName): is empty\nsecond line' },
        { line: '9', invoiceNumber: `'=HYPERLINK("http://x")`, reason: "'-bad" },
      ]);
    } finally {
      await removeDir(dir);
    }
  },
);

test('a missing rejects folder is created on the first add', { timeout: TEST_TIMEOUT_MS }, async () => {
  const dir = await tempDir();
  try {
    const writer = new RejectsWriter(path.join(dir, 'rejects', 'r.csv'));
    await writer.add({ line: 2, reason: 'x' });
    assert.equal(await writer.close(), 1);
    assert.match(
      fs.readFileSync(path.join(dir, 'rejects', 'r.csv'), 'utf8'),
      /^\uFEFFline,invoiceNumber,reason/,
    );
  } finally {
    await removeDir(dir);
  }
});

test(
  'a rejects file that cannot be created fails on the first add, and close does not hang',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    try {
      fs.writeFileSync(path.join(dir, 'a-file'), '');
      const writer = new RejectsWriter(path.join(dir, 'a-file', 'rejects.csv'));
      await assert.rejects(writer.add({ line: 2, reason: 'x' }), /ENOTDIR|EEXIST/);
      await writer.close().catch(() => undefined);
    } finally {
      await removeDir(dir);
    }
  },
);
