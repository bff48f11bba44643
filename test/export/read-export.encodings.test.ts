// UTF-8, UTF-8 with BOM and CP932 exports read to the same records; the encoding is detected
// under 'auto' and a wrong configuration fails the file with a message that says what to do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import iconv from 'iconv-lite';
import { ExportError, readExport, writeExportCsv } from '../../src/export';
import { HEADERS, readAll, removeDir, tempDir, writePdfs } from './export-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const ROWS = [
  ['INV-2024-0001', '株式会社山田商事', '¥12,345', 'pdf/INV-2024-0001.pdf', '2024/04/01'],
  ['INV-2024-0002', 'カブシキガイシャ　テスト', '￥１２，３４５', 'pdf/INV-2024-0002.pdf', '2024-04-02'],
  ['INV-2024-0003', '有限会社ｻﾝﾌﾟﾙ・東京支店', '980000', 'pdf/INV-2024-0003.pdf', '2024/12/31'],
  ['INV-2024-0004', '合同会社"北海道", 札幌\n経理部', '1,000', 'pdf/INV-2024-0004.pdf', '2025-01-15'],
  ['INV-2024-0005', 'ユニコード㈱', '5', 'pdf/INV-2024-0005.pdf', '2025-01-16'],
];

const EXPECTED = [
  {
    line: 2,
    invoiceNumber: 'INV-2024-0001',
    customerName: '株式会社山田商事',
    amount: 12345,
    issueDate: '2024-04-01',
  },
  {
    line: 3,
    invoiceNumber: 'INV-2024-0002',
    customerName: 'カブシキガイシャ　テスト',
    amount: 12345,
    issueDate: '2024-04-02',
  },
  {
    line: 4,
    invoiceNumber: 'INV-2024-0003',
    customerName: '有限会社ｻﾝﾌﾟﾙ・東京支店',
    amount: 980000,
    issueDate: '2024-12-31',
  },
  {
    line: 5,
    invoiceNumber: 'INV-2024-0004',
    customerName: '合同会社"北海道", 札幌\n経理部',
    amount: 1000,
    issueDate: '2025-01-15',
  },
  // Line 7: the row before spans lines 5 and 6. ㈱ is a CP932 (NEC) extension, not plain Shift_JIS.
  {
    line: 7,
    invoiceNumber: 'INV-2024-0005',
    customerName: 'ユニコード㈱',
    amount: 5,
    issueDate: '2025-01-16',
  },
];

async function withExports(
  fn: (dir: string, files: { utf8: string; bom: string; cp932: string }) => Promise<void>,
): Promise<void> {
  const dir = await tempDir();
  try {
    await writePdfs(dir, ...ROWS.map((r) => r[3]!));
    const files = {
      utf8: path.join(dir, 'utf8.csv'),
      bom: path.join(dir, 'bom.csv'),
      cp932: path.join(dir, 'sjis.csv'),
    };
    await writeExportCsv(files.utf8, HEADERS, ROWS, 'utf8');
    await writeExportCsv(files.bom, HEADERS, ROWS, 'utf8-bom');
    await writeExportCsv(files.cp932, HEADERS, ROWS, 'cp932');
    await fn(dir, files);
  } finally {
    await removeDir(dir);
  }
}

test(
  'UTF-8, UTF-8 with BOM and CP932 exports read to the same records',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    await withExports(async (dir, files) => {
      const realDir = await fs.promises.realpath(dir);
      // The CP932 file really is Shift_JIS bytes (株 = 0x8A 0x94), not UTF-8.
      assert.ok((await fs.promises.readFile(files.cp932)).includes(Buffer.from([0x8a, 0x94])));
      for (const [file, encoding, expected] of [
        [files.utf8, 'utf8', 'utf8'],
        [files.bom, 'utf8', 'utf8'],
        [files.cp932, 'cp932', 'cp932'],
        [files.utf8, 'auto', 'utf8'],
        [files.bom, 'auto', 'utf8'],
        [files.cp932, 'auto', 'cp932'],
      ] as const) {
        const { accepted, rejected, summary } = await readAll(file, { encoding });
        assert.deepEqual(rejected, [], `${file} as ${encoding}`);
        assert.deepEqual(
          accepted.map(({ pdfPath: _p, pdfRelativePath: _r, ...rest }) => rest),
          EXPECTED,
          `${file} as ${encoding}`,
        );
        assert.deepEqual(
          accepted.map((a) => [a.pdfRelativePath, a.pdfPath]),
          ROWS.map((r) => [r[3], path.join(realDir, r[3]!)]),
        );
        assert.deepEqual(summary, {
          file,
          encoding: expected,
          rows: 5,
          accepted: 5,
          rejected: 0,
          bytes: (await fs.promises.stat(file)).size,
        });
      }
    });
  },
);

test('encoding defaults to auto', { timeout: TEST_TIMEOUT_MS }, async () => {
  await withExports(async (_dir, files) => {
    const { summary } = await readAll(files.cp932, {});
    assert.equal(summary.encoding, 'cp932');
    assert.equal(summary.accepted, 5);
  });
});

test(
  'a CP932 export read by a job configured utf8 fails the file, naming it and suggesting cp932',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    await withExports(async (_dir, files) => {
      await assert.rejects(readAll(files.cp932, { encoding: 'utf8' }), (err: unknown) => {
        assert.ok(err instanceof ExportError);
        assert.equal(err.file, files.cp932);
        assert.equal(err.line, 1);
        assert.match(err.message, /not valid UTF-8/);
        assert.ok(err.message.includes(files.cp932));
        assert.match(err.message, /cp932/);
        return true;
      });
    });
  },
);

test(
  'invalid UTF-8 deep in a utf8 file fails the file at that line before any row is yielded',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    try {
      await writePdfs(dir, 'a.pdf');
      const file = path.join(dir, 'late.csv');
      const mapping = { invoiceNumber: 'no', customerName: 'name', amount: 'amount', pdfPath: 'pdf' };
      // 3,000 ASCII rows (several 64 KiB reads), then a Shift_JIS customer name on line 3,002.
      const good = Array.from({ length: 3000 }, (_, i) => `INV-${i},Yamada Shoji,100,a.pdf\r\n`);
      await fs.promises.writeFile(
        file,
        Buffer.concat([
          Buffer.from(`no,name,amount,pdf\r\n${good.join('')}`),
          iconv.encode('INV-X,株式会社テスト,100,a.pdf\r\n', 'cp932'),
        ]),
      );
      let seen = 0;
      await assert.rejects(
        (async () => {
          for await (const _row of readExport(file, { mapping, encoding: 'utf8' })) seen++;
        })(),
        (err: unknown) => err instanceof ExportError && err.line === 3002 && err.file === file,
      );
      assert.equal(seen, 0);
      // auto looks at the whole file, not just its start: it is CP932, and the last name decodes right.
      const { accepted, summary } = await readAll(file, { mapping, encoding: 'auto' });
      assert.deepEqual([summary.encoding, summary.rows, summary.accepted], ['cp932', 3001, 3001]);
      assert.deepEqual(accepted.at(-1), {
        line: 3002,
        invoiceNumber: 'INV-X',
        customerName: '株式会社テスト',
        amount: 100,
        pdfPath: path.join(await fs.promises.realpath(dir), 'a.pdf'),
        pdfRelativePath: 'a.pdf',
      });
    } finally {
      await removeDir(dir);
    }
  },
);

test(
  'a file with a UTF-8 BOM but invalid bytes fails under auto instead of falling back to cp932',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    try {
      const file = path.join(dir, 'damaged.csv');
      await fs.promises.writeFile(
        file,
        Buffer.concat([
          Buffer.from(`\ufeff${HEADERS.join(',')}\r\nD-1,株式会社,1,a.pdf,2024-04-01\r\n`),
          iconv.encode('D-2,株式会社,1,a.pdf,2024-04-01\r\n', 'cp932'),
        ]),
      );
      await assert.rejects(readAll(file), (err: unknown) => {
        assert.ok(err instanceof ExportError);
        assert.equal(err.line, 3);
        assert.match(err.message, /starts with a UTF-8 byte order mark but is not valid UTF-8/);
        return true;
      });
    } finally {
      await removeDir(dir);
    }
  },
);

test(
  'a UTF-8 BOM file read by a job configured cp932 fails the file instead of garbling headers',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    await withExports(async (_dir, files) => {
      await assert.rejects(readAll(files.bom, { encoding: 'cp932' }), (err: unknown) => {
        assert.ok(err instanceof ExportError);
        assert.equal(err.file, files.bom);
        assert.match(err.message, /byte order mark/);
        return true;
      });
    });
  },
);

test(
  'an unreadable export fails with an ExportError naming the file',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    try {
      const file = path.join(dir, 'missing.csv');
      await assert.rejects(readAll(file), (err: unknown) => {
        assert.ok(err instanceof ExportError);
        assert.equal(err.file, file);
        assert.match(err.message, /cannot read export .*missing\.csv \(ENOENT\)/);
        return true;
      });
    } finally {
      await removeDir(dir);
    }
  },
);
