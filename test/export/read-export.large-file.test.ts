// A 20,000-row CP932 export streams through to the end with the right counts and line numbers.
// No timing assertion: speed is the benchmark's business.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { readExport, writeExportCsv, type ExportSummary } from '../../src/export';
import { HEADERS, MAPPING, removeDir, tempDir, writePdfs } from './export-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const ROWS = 20_000;

test(
  'a 20,000-row export streams through with counts that add up',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    try {
      await writePdfs(dir, 'shared.pdf');
      const rows = Array.from({ length: ROWS }, (_, i) => [
        `INV-${String(i + 1).padStart(6, '0')}`,
        `株式会社テスト${i % 97}号, 営業部`,
        // Every 1,000th amount is broken: 20 rejects spread through the file.
        (i + 1) % 1000 === 0 ? '1.5' : `¥${(i * 7).toLocaleString('en-US')}`,
        'shared.pdf',
        '2024/04/01',
      ]);
      const file = path.join(dir, 'large.csv');
      await writeExportCsv(file, HEADERS, rows, 'cp932');

      const generator = readExport(file, { mapping: MAPPING, encoding: 'auto' });
      let accepted = 0;
      let lastLine = 0;
      const rejectedLines: number[] = [];
      let summary: ExportSummary | undefined;
      for (;;) {
        const next = await generator.next();
        if (next.done) {
          summary = next.value;
          break;
        }
        const row = next.value;
        const line = row.ok ? row.invoice.line : row.rejected.line;
        assert.equal(line, lastLine === 0 ? 2 : lastLine + 1);
        lastLine = line;
        if (row.ok) {
          accepted++;
          assert.equal(row.invoice.invoiceNumber, `INV-${String(line - 1).padStart(6, '0')}`);
        } else rejectedLines.push(line);
      }
      assert.equal(lastLine, ROWS + 1);
      assert.deepEqual(
        rejectedLines,
        Array.from({ length: 20 }, (_, k) => (k + 1) * 1000 + 1),
      );
      assert.deepEqual(summary, {
        file,
        encoding: 'cp932',
        rows: ROWS,
        accepted: ROWS - 20,
        rejected: 20,
        bytes: (await fs.promises.stat(file)).size,
      });
      assert.equal(accepted, summary.accepted);
    } finally {
      await removeDir(dir);
    }
  },
);
