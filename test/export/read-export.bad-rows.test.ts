// Bad rows become rejected rows with the exact line and reason, land in the rejects CSV, and never
// stop the good rows around them; the counts add up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { RejectsWriter } from '../../src/export';
import { HEADERS, MINIMAL_PDF, readAll, removeDir, tempDir, writePdfs } from './export-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

test(
  'bad rows are rejected with exact lines and reasons; good rows still come through',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    try {
      const dir = path.join(root, 'export');
      const outside = path.join(root, 'outside');
      await writePdfs(dir, 'pdf/ok.pdf', 'pdf/ok2.pdf');
      await writePdfs(outside, 'secret.pdf');
      await fs.promises.symlink('pdf/ok2.pdf', path.join(dir, 'inside-link.pdf'));
      await fs.promises.symlink('../outside/secret.pdf', path.join(dir, 'escape.pdf'));
      await fs.promises.symlink(outside, path.join(dir, 'escdir'));
      const secret = path.join(outside, 'secret.pdf');
      const long = 'L'.repeat(65);

      const lines = [
        HEADERS.join(','), //                                                       1
        'B-1,株式会社一,1000,pdf/ok.pdf,2024-04-01', //                               2
        'B-2,株式会社二,"12,34",pdf/ok.pdf,2024-04-01', //                            3
        ',株式会社三,100,pdf/ok.pdf,2024-04-01', //                                   4
        'B-1,株式会社一の重複,1000,pdf/ok.pdf,2024-04-01', //                          5
        'B-3,株式会社四,100,pdf/ok.pdf', //                                           6
        'B-4,株式会社五,100,pdf/nope.pdf,2024-04-01', //                              7
        'B-5,株式会社六,100,../outside/secret.pdf,2024-04-01', //                     8
        `B-6,株式会社七,100,${secret},2024-04-01`, //                                 9
        'B-7,株式会社八,100,escape.pdf,2024-04-01', //                               10
        'B-8,株式会社九,100,escdir/secret.pdf,2024-04-01', //                        11
        'B-9,株式会社十,900,inside-link.pdf,2024-04-01', //                          12
        'B-10,"複数行', //                                                           13
        'の会社",1010,pdf/ok.pdf,2024-04-01', //                                     14
        'B-11,株式会社十一,100,pdf/ok.pdf,2024-13-01', //                            15
        '../evil,株式会社十二,100,pdf/ok.pdf,2024-04-01', //                         16
        'b-1,株式会社十三,100,pdf/ok.pdf,2024-04-01', //                             17
        'B-12,株式会社十四,1200,pdf\\ok.pdf,2024-04-01', //                          18
        'B-13,株式会社十五,100,pdf,2024-04-01', //                                   19
        'B-14,株式会社十六,abc,pdf/missing.pdf,2024-04-01', //                       20
        'B-15,株式会社十七,100,..\\outside\\secret.pdf,2024-04-01', //               21
        '.,株式会社十八,100,pdf/ok.pdf,2024-04-01', //                               22
        `${long},株式会社十九,100,pdf/ok.pdf,2024-04-01`, //                         23
        'B-16, ,100,pdf/ok.pdf,2024-04-01', //                                       24
        'B-17,株式会社二十,1700,pdf/ok.pdf,2024-04-01,余分', //                        25
        'B-18,株式会社二十一,1800,pdf/ok.pdf,', //                                   26
        'B-19,最後の会社,"¥1,900",./pdf/../pdf/ok.pdf,2024/4/9', //                   27
      ];
      const file = path.join(dir, 'export.csv');
      await fs.promises.writeFile(file, lines.join('\n') + '\n');

      const { accepted, rejected, summary, rows } = await readAll(file);
      const realDir = await fs.promises.realpath(dir);

      assert.deepEqual(
        accepted.map((a) => [
          a.line,
          a.invoiceNumber,
          a.customerName,
          a.amount,
          a.pdfRelativePath,
          a.pdfPath,
        ]),
        [
          [2, 'B-1', '株式会社一', 1000, 'pdf/ok.pdf', path.join(realDir, 'pdf/ok.pdf')],
          [12, 'B-9', '株式会社十', 900, 'inside-link.pdf', path.join(realDir, 'pdf/ok2.pdf')],
          [13, 'B-10', '複数行\nの会社', 1010, 'pdf/ok.pdf', path.join(realDir, 'pdf/ok.pdf')],
          [18, 'B-12', '株式会社十四', 1200, 'pdf/ok.pdf', path.join(realDir, 'pdf/ok.pdf')],
          [27, 'B-19', '最後の会社', 1900, 'pdf/ok.pdf', path.join(realDir, 'pdf/ok.pdf')],
        ],
      );
      const leaves = 'PDFファイル (pdfPath): path leaves the export folder';
      const expectedRejects = [
        { line: 3, invoiceNumber: 'B-2', reason: '請求金額 (amount): "12,34" is not a whole-yen amount' },
        { line: 4, reason: '請求書番号 (invoiceNumber): is empty' },
        {
          line: 5,
          invoiceNumber: 'B-1',
          reason: '請求書番号 (invoiceNumber): duplicate invoice number B-1, first seen on line 2',
        },
        { line: 6, invoiceNumber: 'B-3', reason: 'has 4 fields where the header has 5' },
        { line: 7, invoiceNumber: 'B-4', reason: 'PDFファイル (pdfPath): PDF not found: pdf/nope.pdf' },
        { line: 8, invoiceNumber: 'B-5', reason: `${leaves} (../outside/secret.pdf)` },
        { line: 9, invoiceNumber: 'B-6', reason: `${leaves} (absolute path ${secret})` },
        { line: 10, invoiceNumber: 'B-7', reason: `${leaves} (escape.pdf leads out through a symlink)` },
        {
          line: 11,
          invoiceNumber: 'B-8',
          reason: `${leaves} (escdir/secret.pdf leads out through a symlink)`,
        },
        {
          line: 15,
          invoiceNumber: 'B-11',
          reason: '発行日 (issueDate): "2024-13-01" is not a date as YYYY-MM-DD or YYYY/MM/DD',
        },
        {
          line: 16,
          invoiceNumber: '../evil',
          reason:
            '請求書番号 (invoiceNumber): "../evil" may hold only letters, digits, "-", "_" and "." ' +
            '(it becomes a file name)',
        },
        {
          line: 17,
          invoiceNumber: 'b-1',
          reason:
            '請求書番号 (invoiceNumber): duplicate invoice number b-1: differs only in letter case from B-1, ' +
            'first seen on line 2',
        },
        { line: 19, invoiceNumber: 'B-13', reason: 'PDFファイル (pdfPath): PDF is not a file: pdf' },
        {
          line: 20,
          invoiceNumber: 'B-14',
          reason:
            '請求金額 (amount): "abc" is not a whole-yen amount; PDFファイル (pdfPath): PDF not found: pdf/missing.pdf',
        },
        { line: 21, invoiceNumber: 'B-15', reason: `${leaves} (..\\outside\\secret.pdf)` },
        {
          line: 22,
          invoiceNumber: '.',
          reason:
            '請求書番号 (invoiceNumber): "." ends in a dot or a space (Windows drops it from a file name)',
        },
        { line: 23, invoiceNumber: long, reason: '請求書番号 (invoiceNumber): is longer than 64 characters' },
        { line: 24, invoiceNumber: 'B-16', reason: '取引先名 (customerName): is empty' },
        { line: 25, invoiceNumber: 'B-17', reason: 'has 6 fields where the header has 5' },
        { line: 26, invoiceNumber: 'B-18', reason: '発行日 (issueDate): is empty' },
      ];
      assert.deepEqual(rejected, expectedRejects);
      // Rows come in file order, accepted and rejected interleaved.
      const order = rows.map((r) => (r.ok ? r.invoice.line : r.rejected.line));
      assert.deepEqual(
        order,
        [...order].sort((a, b) => a - b),
      );
      assert.deepEqual(summary, {
        file,
        encoding: 'utf8',
        rows: 25,
        accepted: 5,
        rejected: 20,
        bytes: (await fs.promises.stat(file)).size,
      });
      assert.equal(summary.rows, summary.accepted + summary.rejected);

      // The rejects land in a CSV that Excel opens (UTF-8 BOM) and that parses back to the same rows.
      const rejectsFile = path.join(root, 'rejects.csv');
      const writer = new RejectsWriter(rejectsFile);
      for (const r of rejected) await writer.add(r);
      assert.equal(await writer.close(), 20);
      const bytes = await fs.promises.readFile(rejectsFile);
      assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf]);
      const back = parse(bytes, { bom: true, columns: true }) as Record<string, string>[];
      assert.deepEqual(
        back,
        expectedRejects.map((r) => ({
          line: String(r.line),
          invoiceNumber: r.invoiceNumber ?? '',
          reason: r.reason,
        })),
      );
      // The PDF outside was never touched, only refused.
      assert.equal(await fs.promises.readFile(secret, 'utf8'), MINIMAL_PDF);
    } finally {
      await removeDir(root);
    }
  },
);
