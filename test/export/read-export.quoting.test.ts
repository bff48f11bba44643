// Quoted fields with commas, doubled quotes and line breaks; blank lines; LF, CRLF and CR line
// ends. Every row reports the line it starts on, however many lines the rows before it spanned.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ExportError, readExport } from '../../src/export';
import { HEADERS, MAPPING, readAll, removeDir, tempDir, writePdfs } from './export-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const LINES = [
  HEADERS.join(','), //                                        1
  'A-1,"株式会社山田, 東京支店",1000,a.pdf,2024-04-01', //      2
  'A-2,"複数行の', //                                           3
  '取引先名', //                                                4
  '""引用符""付き",2000,a.pdf,2024-04-02', //                   5
  '', //                                                        6
  'A-3,シンプル,3000,a.pdf,2024-04-03', //                      7
  '', //                                                        8
  '', //                                                        9
  'A-4,"改行', //                                              10
  '",4000,"a.pdf",2024/4/4', //                                11
  'A-5,"ABC ""Trading"" Co",5000,a.pdf,2024-04-05', //          12
  'A-6,ABC "Trading" Co,6000,a.pdf,2024-04-06', //              13
  ',,,,', //                                                   14
  'A-7,悪い金額,12.5,a.pdf,2024-04-07', //                       15
  '  A-8  , 前後の空白 , 8000 , a.pdf , 2024-04-08 ', //         16
];

const EXPECTED_ACCEPTED = [
  [2, 'A-1', '株式会社山田, 東京支店', 1000, '2024-04-01'],
  [3, 'A-2', '複数行の\n取引先名\n"引用符"付き', 2000, '2024-04-02'],
  [7, 'A-3', 'シンプル', 3000, '2024-04-03'],
  [10, 'A-4', '改行', 4000, '2024-04-04'],
  [12, 'A-5', 'ABC "Trading" Co', 5000, '2024-04-05'],
  [13, 'A-6', 'ABC "Trading" Co', 6000, '2024-04-06'],
  [16, 'A-8', '前後の空白', 8000, '2024-04-08'],
];

for (const [name, eol] of [
  ['LF', '\n'],
  ['CRLF', '\r\n'],
  ['CR', '\r'],
] as const) {
  for (const trailing of [true, false]) {
    test(
      `quoted commas, quotes and line breaks keep their start lines (${name}, ${trailing ? 'with final line end' : 'without one: refused'})`,
      { timeout: TEST_TIMEOUT_MS },
      async () => {
        const dir = await tempDir();
        try {
          await writePdfs(dir, 'a.pdf');
          const file = path.join(dir, 'export.csv');
          await fs.promises.writeFile(file, LINES.join(eol) + (trailing ? eol : ''));
          if (!trailing) {
            // The last line may have been cut while being written: the file is refused before any row.
            let seen = 0;
            await assert.rejects(
              (async () => {
                for await (const _row of readExport(file, { mapping: MAPPING })) seen++;
              })(),
              (err: unknown) =>
                err instanceof ExportError &&
                err.file === file &&
                err.message.includes(file) &&
                /the last line is cut \(the file does not end with a line break/.test(err.message),
            );
            assert.equal(seen, 0);
            return;
          }
          const { accepted, rejected, summary } = await readAll(file);
          assert.deepEqual(
            accepted.map((a) => [a.line, a.invoiceNumber, a.customerName, a.amount, a.issueDate]),
            EXPECTED_ACCEPTED,
          );
          assert.deepEqual(rejected, [
            { line: 15, invoiceNumber: 'A-7', reason: '請求金額 (amount): "12.5" is not a whole-yen amount' },
          ]);
          assert.deepEqual([summary.rows, summary.accepted, summary.rejected], [8, 7, 1]);
        } finally {
          await removeDir(dir);
        }
      },
    );
  }
}

test(
  'a quote never closed fails the file after exactly the rows before it',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    try {
      await writePdfs(dir, 'a.pdf');
      const file = path.join(dir, 'export.csv');
      // 500 good rows first, so the parser has more parsed than the reader has taken when it fails.
      const good = Array.from({ length: 500 }, (_, i) => `A-${i},会社${i},1,a.pdf,2024-04-01`);
      const lines = [
        HEADERS.join(','),
        ...good,
        '',
        'B-1,"閉じない,2,a.pdf,2024-04-02',
        'B-2,三,3,a.pdf,2024-04-03',
        '',
      ];
      await fs.promises.writeFile(file, lines.join('\r\n'));
      const seen: number[] = [];
      await assert.rejects(
        (async () => {
          for await (const row of readExport(file, { mapping: MAPPING }))
            if (row.ok) seen.push(row.invoice.line);
        })(),
        (err: unknown) => {
          assert.ok(err instanceof ExportError);
          assert.equal(err.file, file);
          assert.equal(err.line, 502);
          assert.match(err.message, /quoted field in the row after line 501 is never closed/);
          return true;
        },
      );
      assert.deepEqual(
        seen,
        good.map((_, i) => i + 2),
      );
    } finally {
      await removeDir(dir);
    }
  },
);

test(
  'a row longer than a million bytes fails the file instead of filling memory',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    try {
      await writePdfs(dir, 'a.pdf');
      const file = path.join(dir, 'export.csv');
      const lines = [
        HEADERS.join(','),
        'A-1,一,1,a.pdf,2024-04-01',
        `A-2,"${'長'.repeat(1_000_001)}",1,a.pdf,2024-04-01`,
      ];
      await fs.promises.writeFile(file, lines.join('\n') + '\n');
      let seen = 0;
      await assert.rejects(
        (async () => {
          for await (const _row of readExport(file, { mapping: MAPPING })) seen++;
        })(),
        (err: unknown) =>
          err instanceof ExportError && err.line === 3 && /longer than 1000000 bytes/.test(err.message),
      );
      assert.equal(seen, 1);
    } finally {
      await removeDir(dir);
    }
  },
);

test('a consumer that stops early leaves no file open', { timeout: 180_000 }, async () => {
  const dir = await tempDir();
  try {
    await writePdfs(dir, 'a.pdf');
    const file = path.join(dir, 'export.csv');
    const good = Array.from({ length: 5000 }, (_, i) => `A-${i},会社,1,a.pdf,2024-04-01`);
    await fs.promises.writeFile(file, [HEADERS.join(','), ...good, ''].join('\n'));
    const openOnFile = async () => {
      const fds = await fs.promises.readdir('/proc/self/fd');
      const targets = await Promise.all(
        fds.map((fd) => fs.promises.readlink(`/proc/self/fd/${fd}`).catch(() => '')),
      );
      return targets.filter((t) => t === file).length;
    };
    for await (const row of readExport(file, { mapping: MAPPING })) {
      assert.equal(row.ok, true);
      assert.equal(await openOnFile(), 1);
      break;
    }
    // The stream closes its descriptor asynchronously: wait for it, however loaded the machine is (the
    // test's timeout catches a descriptor that stays open).
    while ((await openOnFile()) !== 0) await new Promise((resolve) => setTimeout(resolve, 10));
  } finally {
    await removeDir(dir);
  }
});

test('a header-only export has no rows; an empty file fails', { timeout: TEST_TIMEOUT_MS }, async () => {
  const dir = await tempDir();
  try {
    const file = path.join(dir, 'export.csv');
    await fs.promises.writeFile(file, `${HEADERS.join(',')}\r\n\r\n`);
    const { rows, summary } = await readAll(file);
    assert.deepEqual(rows, []);
    assert.deepEqual([summary.rows, summary.accepted, summary.rejected], [0, 0, 0]);

    await fs.promises.writeFile(file, '');
    await assert.rejects(
      readAll(file),
      (err: unknown) => err instanceof ExportError && /no header row/.test(err.message),
    );
  } finally {
    await removeDir(dir);
  }
});
