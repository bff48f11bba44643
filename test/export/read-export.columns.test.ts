// Column mapping: headers are found by name (trimmed), a missing required column fails the file
// naming the file, the header and the field, and issueDate may be left unmapped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ExportError, writeExportCsv, type ColumnMapping } from '../../src/export';
import { HEADERS, MAPPING, readAll, removeDir, tempDir, writePdfs } from './export-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

async function withExport(headers: string[], rows: string[][], fn: (file: string) => Promise<void>) {
  const dir = await tempDir();
  try {
    await writePdfs(dir, 'a.pdf');
    const file = path.join(dir, '請求データ.csv');
    await writeExportCsv(file, headers, rows, 'cp932');
    await fn(file);
  } finally {
    await removeDir(dir);
  }
}

test(
  'a missing required column fails the file, naming the file, the column header and the field',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const headers = ['請求書番号', '取引先名', 'PDFファイル', '発行日'];
    await withExport(headers, [['C-1', '株式会社', 'a.pdf', '2024-04-01']], async (file) => {
      await assert.rejects(readAll(file), (err: unknown) => {
        assert.ok(err instanceof ExportError);
        assert.equal(err.file, file);
        assert.equal(err.column, '請求金額');
        assert.equal(err.line, 1);
        assert.ok(err.message.includes(file), err.message);
        assert.match(err.message, /missing column "請求金額" \(amount\)/);
        // The header as read is shown, so a wrong encoding or a typo is visible.
        assert.match(err.message, /"請求書番号", "取引先名", "PDFファイル", "発行日"/);
        return true;
      });
    });
  },
);

test('every missing column is named, the first in err.column', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withExport(['番号', '取引先名', '金額'], [['C-1', '株式会社', '1']], async (file) => {
    await assert.rejects(readAll(file), (err: unknown) => {
      assert.ok(err instanceof ExportError);
      assert.equal(err.column, '請求書番号');
      assert.match(
        err.message,
        /missing column "請求書番号" \(invoiceNumber\), "請求金額" \(amount\), "発行日" \(issueDate\), "PDFファイル" \(pdfPath\);/,
      );
      return true;
    });
  });
});

test(
  'header cells are trimmed and columns may come in any order, with extra columns ignored',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const headers = [' 備考 ', ' 発行日', 'PDFファイル ', '請求金額', '　取引先名　', '請求書番号'];
    await withExport(
      headers,
      [['メモ', '2024/4/1', 'a.pdf', '￥3,000', '株式会社順不同', 'C-9']],
      async (file) => {
        const { accepted } = await readAll(file);
        assert.deepEqual(
          accepted.map(({ pdfPath: _p, ...rest }) => rest),
          [
            {
              line: 2,
              invoiceNumber: 'C-9',
              customerName: '株式会社順不同',
              amount: 3000,
              issueDate: '2024-04-01',
              pdfRelativePath: 'a.pdf',
            },
          ],
        );
      },
    );
  },
);

test(
  'issueDate is optional in the mapping: unmapped, records have no issueDate',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { issueDate: _unused, ...mapping } = MAPPING;
    await withExport(
      ['請求書番号', '取引先名', '請求金額', 'PDFファイル'],
      [['C-1', '株式会社', '1', 'a.pdf']],
      async (file) => {
        const { accepted, summary } = await readAll(file, { mapping });
        assert.equal(summary.accepted, 1);
        assert.equal('issueDate' in accepted[0]!, false);
      },
    );
  },
);

test(
  'a mapped column that appears twice in the header fails the file as ambiguous',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    await withExport(
      [...HEADERS, '請求金額'],
      [['C-1', '株式会社', '1', 'a.pdf', '2024-04-01', '2']],
      async (file) => {
        await assert.rejects(readAll(file), (err: unknown) => {
          assert.ok(err instanceof ExportError);
          assert.equal(err.column, '請求金額');
          assert.match(
            err.message,
            /column "請求金額" \(amount\) appears 2 times in the header \(columns 3, 6\)/,
          );
          return true;
        });
      },
    );
  },
);

test(
  'a mapping with an empty column header fails before the file is read',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    await withExport(HEADERS, [], async (file) => {
      const mapping = { ...MAPPING, amount: ' ' } as ColumnMapping;
      await assert.rejects(readAll(file, { mapping }), (err: unknown) => {
        assert.ok(err instanceof ExportError);
        assert.equal(err.file, file);
        assert.match(err.message, /column mapping for export .* has no column header for amount/);
        return true;
      });
    });
  },
);

test('the export file itself is reported by its absolute path', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withExport(HEADERS, [['C-1', '株式会社', '1', 'a.pdf', '2024-04-01']], async (file) => {
    const relative = path.relative(process.cwd(), file);
    const { summary } = await readAll(relative);
    assert.equal(summary.file, file);
    assert.ok(fs.existsSync(summary.file));
  });
});
