// Both layouts of a data export group each invoice's rows, wherever they are in the file(s): one CSV
// with a record-type column, or a header file and a detail file joined by invoice number. CP932
// exports read the same; rows that belong to no invoice are rejected by file and line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ExportError } from '../../../src/export/export-error';
import { readDataExport } from '../../../src/export/qualified/read-data-export';
import {
  COMBINED_COLUMNS,
  DETAIL_COLUMNS,
  HEADER_COLUMNS,
  MAPPING,
  RECORD_TYPE,
  TYPE_COLUMN,
  combinedDetail,
  combinedHeader,
  detailCells,
  headerCells,
  readAll,
  writeCsv,
} from './data-export-fixture';
import { tempDir } from '../../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../../helpers/timeouts';

/** invoice number → [header line, detail lines], from the rows of a read */
function shape(
  invoices: { invoiceNumber: string; header?: { line: number }; details: { line: number }[] }[],
) {
  return invoices.map((i) => [i.invoiceNumber, i.header?.line, i.details.map((d) => d.line)]);
}

test(
  'record-type layout: rows of one invoice spread through the file come out as one invoice',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'export.csv');
    // line 2.., a detail before its header, an invoice's details far apart, a blank line.
    await writeCsv(file, COMBINED_COLUMNS, [
      combinedDetail('INV-10', 0), // 2
      combinedHeader('INV-2'), // 3
      combinedDetail('INV-2', 0), // 4
      combinedHeader('INV-10'), // 5
      combinedDetail('INV-2', 1), // 6
      ['', '', '', '', '', '', '', '', '', '', ''], // 7: all blank, not a row
      combinedDetail('INV-10', 1), // 8
      combinedDetail('INV-3', 0), // 9: details only
    ]);
    const { invoices, rejected, summary } = await readAll(file, { layout: RECORD_TYPE, mapping: MAPPING });
    assert.deepEqual(rejected, []);
    // Natural order: INV-2, INV-3, INV-10.
    assert.deepEqual(shape(invoices), [
      ['INV-2', 3, [4, 6]],
      ['INV-3', undefined, [9]],
      ['INV-10', 5, [2, 8]],
    ]);
    const inv2 = invoices[0]!;
    assert.deepEqual(inv2.header, {
      file,
      line: 3,
      cells: {
        invoiceNumber: 'INV-2',
        issuerName: '株式会社サクラ商事',
        registrationNumber: 'T1234567890123',
        issueDate: '2026-11-30',
        recipientName: '取引先INV-2',
        total: '1100',
      },
    });
    assert.deepEqual(inv2.details[1], {
      file,
      line: 6,
      cells: {
        invoiceNumber: 'INV-2',
        description: '品目1, "特上"',
        quantity: '2',
        unitPrice: '100',
        taxCategory: '軽減',
      },
    });
    assert.equal(inv2.extraHeaders, undefined);
    assert.deepEqual(summary, {
      files: [{ file, encoding: 'utf8', rows: 7, rejected: 0 }],
      invoices: 3,
      rejected: 0,
      rows: 7,
      maxRowsInMemory: 50_000,
      spilledRuns: 0,
      largestBuffer: 7,
      largestInvoice: 3,
      headerRows: 2,
    });
  },
);

test(
  'two-files layout: details join their header by invoice number, whatever the order of either file',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const headers = path.join(dir, 'headers.csv');
    const details = path.join(dir, 'details.csv');
    await writeCsv(headers, HEADER_COLUMNS, [headerCells('B-1'), headerCells('A-7'), headerCells('A-10')]);
    await writeCsv(details, DETAIL_COLUMNS, [
      detailCells('A-10', 0), // 2
      detailCells('B-1', 0), // 3
      detailCells('A-7', 0), // 4
      detailCells('A-10', 1), // 5
      detailCells('A-7', 1), // 6
    ]);
    // A relative detail path is taken from the header file's folder.
    const { invoices, rejected, summary } = await readAll(headers, {
      layout: { kind: 'two-files', details: 'details.csv' },
      mapping: MAPPING,
    });
    assert.deepEqual(rejected, []);
    assert.deepEqual(shape(invoices), [
      ['A-7', 3, [4, 6]],
      ['A-10', 4, [2, 5]],
      ['B-1', 2, [3]],
    ]);
    assert.equal(invoices[0]!.header!.file, headers);
    assert.equal(invoices[0]!.details[0]!.file, details);
    assert.deepEqual(summary.files, [
      { file: headers, encoding: 'utf8', rows: 3, rejected: 0 },
      { file: details, encoding: 'utf8', rows: 5, rejected: 0 },
    ]);
    assert.equal(summary.rows, 8);
  },
);

test(
  'CP932 exports read to the same invoices as UTF-8 ones, in both layouts',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    // ㈱ and ～ are CP932 (NEC / Microsoft) characters, not plain Shift_JIS.
    const rows = [
      ['H', 'INV-1', '㈱髙橋製作所', 'T1234567890123', '2026-11-30', 'ソフトバンク㈱', '1,100'],
      ['D', 'INV-1', '', '', '', '', '', 'ネジ～ボルト', '3', '100', '標準'],
      ['H', 'INV-2', '㈱髙橋製作所', 'T1234567890123', '2026-11-30', 'ﾃｽﾄ', '108'],
      ['D', 'INV-2', '', '', '', '', '', '弁当', '1', '100', '軽減'],
    ].map((r) => (r.length === 7 ? [...r, '', '', '', ''] : r));
    for (const encoding of ['utf8', 'cp932'] as const) {
      await writeCsv(path.join(dir, `one-${encoding}.csv`), COMBINED_COLUMNS, rows, encoding);
      await writeCsv(
        path.join(dir, `h-${encoding}.csv`),
        HEADER_COLUMNS,
        rows.filter((r) => r[0] === 'H').map((r) => r.slice(1, 7)),
        encoding,
      );
      await writeCsv(
        path.join(dir, `d-${encoding}.csv`),
        DETAIL_COLUMNS,
        rows.filter((r) => r[0] === 'D').map((r) => [r[1]!, ...r.slice(7)]),
        encoding,
      );
    }
    const cells = (r: Awaited<ReturnType<typeof readAll>>) =>
      r.invoices.map((i) => [i.header?.cells, i.details.map((d) => d.cells)]);
    const utf8 = await readAll(path.join(dir, 'one-utf8.csv'), { layout: RECORD_TYPE, mapping: MAPPING });
    const cp932 = await readAll(path.join(dir, 'one-cp932.csv'), { layout: RECORD_TYPE, mapping: MAPPING });
    assert.equal(cp932.summary.files[0]!.encoding, 'cp932');
    assert.deepEqual(cells(cp932), cells(utf8));
    assert.equal(utf8.invoices[0]!.header!.cells.issuerName, '㈱髙橋製作所');
    assert.equal(utf8.invoices[0]!.details[0]!.cells.description, 'ネジ～ボルト');

    const twoFiles = (encoding: string, configured: 'auto' | 'cp932') =>
      readAll(path.join(dir, `h-${encoding}.csv`), {
        layout: { kind: 'two-files', details: path.join(dir, `d-${encoding}.csv`) },
        mapping: MAPPING,
        encoding: configured,
      });
    const twoUtf8 = await twoFiles('utf8', 'auto');
    const twoCp932 = await twoFiles('cp932', 'cp932');
    assert.deepEqual(
      twoCp932.summary.files.map((f) => f.encoding),
      ['cp932', 'cp932'],
    );
    assert.deepEqual(cells(twoCp932), cells(twoUtf8));
    assert.deepEqual(cells(twoUtf8), cells(utf8));

    // utf8 configured for a CP932 file fails the file, naming it.
    await assert.rejects(
      readAll(path.join(dir, `h-utf8.csv`), {
        layout: { kind: 'two-files', details: path.join(dir, 'd-cp932.csv') },
        mapping: MAPPING,
        encoding: 'utf8',
      }),
      (err: unknown) =>
        err instanceof ExportError &&
        err.file === path.join(dir, 'd-cp932.csv') &&
        /is not valid UTF-8 \(first invalid byte on line 1\)/.test(err.message),
    );
  },
);

test(
  'a row of another record type, an empty invoice number or a wrong field count is a rejected row naming file and line',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'export.csv');
    await writeCsv(file, COMBINED_COLUMNS, [
      combinedHeader('INV-1'), // 2
      ['X', ...combinedHeader('INV-1').slice(1)], // 3
      combinedDetail('', 0), // 4
      combinedDetail('INV-1', 0), // 5
      ['D', 'INV-1', 'short'], // 6
      [' ', ...combinedDetail('INV-9', 0).slice(1)], // 7
    ]);
    const { invoices, rejected, order, summary } = await readAll(file, {
      layout: RECORD_TYPE,
      mapping: MAPPING,
    });
    assert.deepEqual(rejected, [
      {
        file,
        line: 3,
        invoiceNumber: 'INV-1',
        reason: 'record type "X" in column "レコード区分" is neither "H" (header) nor "D" (detail)',
      },
      { file, line: 4, reason: 'the invoice number (column "請求書番号") is empty' },
      { file, line: 6, invoiceNumber: 'INV-1', reason: 'has 3 fields where the header has 11' },
      {
        file,
        line: 7,
        invoiceNumber: 'INV-9',
        reason: 'record type "" in column "レコード区分" is neither "H" (header) nor "D" (detail)',
      },
    ]);
    // Rejected rows come as they are read, before the first invoice.
    assert.deepEqual(order, ['rejected', 'rejected', 'rejected', 'rejected', 'invoice']);
    assert.deepEqual(shape(invoices), [['INV-1', 2, [5]]]);
    assert.equal(summary.rows, 6);
    assert.equal(summary.rejected, 4);
    assert.deepEqual(summary.files[0], { file, encoding: 'utf8', rows: 6, rejected: 4 });
  },
);

test(
  'a second header row of one number is kept as an extra header, for validation to reject',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'export.csv');
    await writeCsv(file, COMBINED_COLUMNS, [
      combinedDetail('INV-1', 0),
      combinedHeader('INV-1'),
      combinedHeader('INV-1'),
      combinedHeader('inv-1'),
    ]);
    const { invoices } = await readAll(file, { layout: RECORD_TYPE, mapping: MAPPING });
    assert.deepEqual(
      invoices.map((i) => [
        i.invoiceNumber,
        i.header?.line,
        i.extraHeaders?.map((h) => h.line),
        i.details.length,
      ]),
      // Numbers that differ only in case are different invoices, next to each other.
      [
        ['inv-1', 5, undefined, 0],
        ['INV-1', 3, [4], 1],
      ],
    );
  },
);

test(
  'a mapped column missing from a file header fails the export, naming the column and the file',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const headers = path.join(dir, 'headers.csv');
    const details = path.join(dir, 'details.csv');
    await writeCsv(headers, HEADER_COLUMNS, [headerCells('INV-1')]);
    await writeCsv(
      details,
      DETAIL_COLUMNS.map((c) => (c === '税区分' ? '税率' : c)),
      [detailCells('INV-1', 0)],
    );
    const generator = readDataExport(headers, { layout: { kind: 'two-files', details }, mapping: MAPPING });
    await assert.rejects(generator.next(), (err: unknown) => {
      assert.ok(err instanceof ExportError);
      assert.equal(err.file, details);
      assert.equal(err.column, '税区分');
      assert.equal(err.line, 1);
      assert.match(err.message, /export .*details\.csv is missing column "税区分" \(taxCategory\)/);
      return true;
    });

    // An optional field, once mapped, must be there too; the record-type column as well.
    const one = path.join(dir, 'one.csv');
    await writeCsv(
      one,
      COMBINED_COLUMNS.filter((c) => c !== TYPE_COLUMN),
      [],
    );
    await assert.rejects(
      readAll(one, {
        layout: RECORD_TYPE,
        mapping: { ...MAPPING, header: { ...MAPPING.header, dueDate: '支払期日' } },
      }),
      (err: unknown) =>
        err instanceof ExportError &&
        err.file === one &&
        err.column === 'レコード区分' &&
        /missing column "レコード区分" \(recordType\), "支払期日" \(header.dueDate\)/.test(err.message),
    );

    // An invalid mapping fails before any file is opened.
    await assert.rejects(
      readAll(one, {
        layout: RECORD_TYPE,
        mapping: { header: MAPPING.header, detail: { ...MAPPING.detail, quantity: ' ' } },
      }),
      /the column mapping has no column header for detail.quantity/,
    );
  },
);

test(
  'an unreadable, empty or cut file is an ExportError naming it',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const missing = path.join(dir, 'nope.csv');
    await assert.rejects(
      readAll(missing, { layout: RECORD_TYPE, mapping: MAPPING }),
      (err: unknown) => err instanceof ExportError && err.file === missing && /ENOENT/.test(err.message),
    );
    const empty = path.join(dir, 'empty.csv');
    await fs.promises.writeFile(empty, '');
    await assert.rejects(readAll(empty, { layout: RECORD_TYPE, mapping: MAPPING }), /has no header row/);
    const cut = path.join(dir, 'cut.csv');
    await fs.promises.writeFile(cut, COMBINED_COLUMNS.join(',') + '\r\nH,INV-1');
    await assert.rejects(readAll(cut, { layout: RECORD_TYPE, mapping: MAPPING }), /the last line is cut/);
    const open = path.join(dir, 'open-quote.csv');
    await fs.promises.writeFile(open, COMBINED_COLUMNS.join(',') + '\r\nH,"INV-1\r\n');
    await assert.rejects(
      readAll(open, { layout: RECORD_TYPE, mapping: MAPPING }),
      (err: unknown) => err instanceof ExportError && err.line === 2 && /is never closed/.test(err.message),
    );
  },
);
