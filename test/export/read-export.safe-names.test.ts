// One rule for an invoice number that becomes a file name, applied when the row is read; and a PDF
// that is a second name (hard link) of some file is refused like one that leads out through a symlink.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { invoiceNumberProblem, RejectsWriter } from '../../src/export';
import { HEADERS, readAll, removeDir, tempDir, writePdfs } from './export-fixture';

const TIMEOUT = { timeout: 120_000 };

test('invoiceNumberProblem names what makes a number unsafe as a file name', TIMEOUT, () => {
  const unsafe: [string, RegExp][] = [
    ['', /is empty/],
    ['.hidden', /must start with a letter or a digit/],
    ['-lead', /must start with a letter or a digit/],
    ['_lead', /must start with a letter or a digit/],
    ['CON', /reserved Windows device name/],
    ['con', /reserved Windows device name/],
    ['con.2024', /reserved Windows device name/],
    ['Prn.x.y', /reserved Windows device name/],
    ['aux', /reserved Windows device name/],
    ['NUL', /reserved Windows device name/],
    ['com1', /reserved Windows device name/],
    ['COM9.pdf', /reserved Windows device name/],
    ['lpt1', /reserved Windows device name/],
    ['LpT9', /reserved Windows device name/],
    ['INV-1.', /ends in a dot or a space/],
    ['INV-1 ', /ends in a dot or a space/],
    ['INV 1', /may hold only letters, digits/],
    ['請求-1', /may hold only letters, digits/],
    ['a/b', /may hold only letters, digits/],
    ['a\\b', /may hold only letters, digits/],
    ['..', /ends in a dot/],
    ['A'.repeat(65), /longer than 64 characters/],
  ];
  for (const [value, reason] of unsafe) {
    const problem = invoiceNumberProblem(value);
    assert.ok(problem !== undefined, `${JSON.stringify(value)} must be refused`);
    assert.match(problem, reason, JSON.stringify(value));
  }
  for (const safe of [
    'INV-2024-0001',
    'A.B_C-1',
    '1',
    'CONSOLE-1',
    'con2024',
    'com10',
    'LPT',
    'nul-1',
    'A'.repeat(64),
  ]) {
    assert.equal(invoiceNumberProblem(safe), undefined, safe);
  }
});

test(
  'rows with unsafe invoice numbers, case variants and hard-linked PDFs are rejected with line and reason',
  TIMEOUT,
  async () => {
    const root = await tempDir();
    try {
      const dir = path.join(root, 'export');
      const outside = path.join(root, 'outside');
      await writePdfs(dir, 'pdf/ok.pdf', 'pdf/target.pdf');
      await writePdfs(outside, 'secret.pdf');
      // A second name inside the export folder for a file outside it: no path check can see that.
      await fs.promises.link(path.join(outside, 'secret.pdf'), path.join(dir, 'pdf', 'hard.pdf'));
      // A symlink inside the folder to a file that has a hard link elsewhere.
      await fs.promises.link(path.join(dir, 'pdf', 'target.pdf'), path.join(outside, 'copy.pdf'));
      await fs.promises.symlink('target.pdf', path.join(dir, 'pdf', 'via-link.pdf'));

      const lines = [
        HEADERS.join(','), //                                  1
        'XCASE-001,株式会社一,1000,pdf/ok.pdf,2024-04-01', //    2
        '.hidden,株式会社二,1000,pdf/ok.pdf,2024-04-01', //      3
        '-lead,株式会社三,1000,pdf/ok.pdf,2024-04-01', //        4
        '_lead,株式会社四,1000,pdf/ok.pdf,2024-04-01', //        5
        'con.2024,株式会社五,1000,pdf/ok.pdf,2024-04-01', //     6
        'Lpt3,株式会社六,1000,pdf/ok.pdf,2024-04-01', //         7
        'xcase-001,株式会社七,1000,pdf/ok.pdf,2024-04-01', //    8
        'H-1,株式会社八,1000,pdf/hard.pdf,2024-04-01', //        9
        'H-2,株式会社九,1000,pdf/via-link.pdf,2024-04-01', //   10
        'OK-2,株式会社十,1000,pdf/ok.pdf,2024-04-01', //        11
      ];
      const file = path.join(dir, 'export.csv');
      await fs.promises.writeFile(file, lines.join('\r\n') + '\r\n');
      const { accepted, rejected } = await readAll(file);
      assert.deepEqual(
        accepted.map((a) => [a.line, a.invoiceNumber]),
        [
          [2, 'XCASE-001'],
          [11, 'OK-2'],
        ],
      );
      const start = 'must start with a letter or a digit (it becomes a file name)';
      const expected = [
        { line: 3, invoiceNumber: '.hidden', reason: `請求書番号 (invoiceNumber): ".hidden" ${start}` },
        { line: 4, invoiceNumber: '-lead', reason: `請求書番号 (invoiceNumber): "-lead" ${start}` },
        { line: 5, invoiceNumber: '_lead', reason: `請求書番号 (invoiceNumber): "_lead" ${start}` },
        {
          line: 6,
          invoiceNumber: 'con.2024',
          reason:
            '請求書番号 (invoiceNumber): "con.2024" is a reserved Windows device name (it becomes a file name)',
        },
        {
          line: 7,
          invoiceNumber: 'Lpt3',
          reason:
            '請求書番号 (invoiceNumber): "Lpt3" is a reserved Windows device name (it becomes a file name)',
        },
        {
          line: 8,
          invoiceNumber: 'xcase-001',
          reason:
            '請求書番号 (invoiceNumber): duplicate invoice number xcase-001: differs only in letter case from ' +
            'XCASE-001, first seen on line 2',
        },
        {
          line: 9,
          invoiceNumber: 'H-1',
          reason:
            'PDFファイル (pdfPath): PDF is a hard link (2 names for one file; one may be outside the export folder): pdf/hard.pdf',
        },
        {
          line: 10,
          invoiceNumber: 'H-2',
          reason:
            'PDFファイル (pdfPath): PDF is a hard link (2 names for one file; one may be outside the export folder): pdf/via-link.pdf',
        },
      ];
      assert.deepEqual(rejected, expected);

      // The rejects file says the same, line by line (a cell starting with "-" gets a leading ' so Excel keeps it text).
      const rejectsFile = path.join(root, 'rejects.csv');
      const writer = new RejectsWriter(rejectsFile);
      for (const r of rejected) await writer.add(r);
      assert.equal(await writer.close(), expected.length);
      const back = parse(await fs.promises.readFile(rejectsFile), { bom: true, columns: true }) as Record<
        string,
        string
      >[];
      assert.deepEqual(
        back.map((r) => [r.line, r.invoiceNumber, r.reason]),
        expected.map((r) => [
          String(r.line),
          r.invoiceNumber.startsWith('-') ? `'${r.invoiceNumber}` : r.invoiceNumber,
          r.reason,
        ]),
      );
    } finally {
      await removeDir(root);
    }
  },
);
