// Bounded memory: past maxRowsInMemory rows the reader sorts through temporary run files, and the
// groups are the same as when everything fits; the temporary files go when the read ends, fails or is
// abandoned. The memory check counts runs and the largest buffer, never time or RSS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { readDataExport, type DataExportStats } from '../../../src/export/qualified/read-data-export';
import { csvRecords } from '../../../src/common/csv-text';
import {
  COMBINED_COLUMNS,
  DETAIL_COLUMNS,
  HEADER_COLUMNS,
  MAPPING,
  RECORD_TYPE,
  combinedDetail,
  combinedHeader,
  readAll,
  shuffled,
  writeCsv,
} from './data-export-fixture';
import { tempDir } from '../../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../../helpers/timeouts';

/** 5,000 rows of 500 invoices (a header and 9 details each), in random order. */
function randomRows(): string[][] {
  const rows: string[][] = [];
  for (let i = 1; i <= 500; i++) {
    const n = `INV-${i}`;
    rows.push(combinedHeader(n));
    for (let k = 0; k < 9; k++) rows.push(combinedDetail(n, k));
  }
  return shuffled(rows);
}

test(
  'a forced spill (100 rows in memory, 5,000 rows in random order) gives the same groups as no spill',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const tmp = await tempDir('sealer-test-tmp-');
    const file = path.join(dir, 'export.csv');
    await writeCsv(file, COMBINED_COLUMNS, randomRows());

    const inMemory = await readAll(file, { layout: RECORD_TYPE, mapping: MAPPING, tmpDir: tmp });
    const spilled = await readAll(file, {
      layout: RECORD_TYPE,
      mapping: MAPPING,
      maxRowsInMemory: 100,
      tmpDir: tmp,
    });
    assert.equal(inMemory.summary.spilledRuns, 0);
    assert.equal(inMemory.summary.largestBuffer, 5000);
    assert.equal(spilled.summary.spilledRuns, 50);
    assert.equal(spilled.summary.largestBuffer, 100);
    assert.deepEqual(spilled.invoices, inMemory.invoices);
    assert.equal(spilled.invoices.length, 500);
    // Natural order of numbers, each invoice whole, its details in line order.
    assert.deepEqual(
      spilled.invoices.map((i) => i.invoiceNumber),
      Array.from({ length: 500 }, (_, i) => `INV-${i + 1}`),
    );
    for (const invoice of spilled.invoices) {
      assert.ok(invoice.header);
      assert.equal(invoice.details.length, 9);
      const lines = invoice.details.map((d) => d.line);
      assert.deepEqual(
        lines,
        [...lines].sort((a, b) => a - b),
      );
      assert.deepEqual(
        invoice.details.map((d) => d.cells.description).sort(),
        Array.from({ length: 9 }, (_, k) => `品目${k}, "特上"`).sort(),
      );
    }
    assert.equal(spilled.summary.rows, 5000);
    assert.deepEqual(await fs.promises.readdir(tmp), [], 'temporary folder removed after the read');
  },
);

test(
  'stopping early, or a failure part-way, removes the temporary files',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const tmp = await tempDir('sealer-test-tmp-');
    const file = path.join(dir, 'export.csv');
    const rows = randomRows();
    // One rejected row (empty invoice number) at the end of the file: yielded once all runs are written.
    rows.push(combinedDetail('', 0));
    await writeCsv(file, COMBINED_COLUMNS, rows);
    const options = { layout: RECORD_TYPE, mapping: MAPPING, maxRowsInMemory: 100, tmpDir: tmp };

    // Stopped in the merge, after the first invoice.
    const stats: DataExportStats = { spilledRuns: 0, largestBuffer: 0, largestInvoice: 0, headerRows: 0 };
    let generator = readDataExport(file, { ...options, stats });
    let next = await generator.next();
    assert.equal(next.done, false);
    assert.equal(next.done === false && next.value.ok, false);
    next = await generator.next();
    assert.ok(next.done === false && next.value.ok && next.value.invoice.invoiceNumber === 'INV-1');
    assert.equal(stats.spilledRuns, 50);
    const [sortDir] = await fs.promises.readdir(tmp);
    assert.ok(sortDir);
    assert.equal((await fs.promises.readdir(path.join(tmp, sortDir))).length, 50);
    await generator.return(undefined as never);
    assert.deepEqual(await fs.promises.readdir(tmp), []);

    // Stopped while reading, at the rejected row, with runs already written.
    generator = readDataExport(file, options);
    next = await generator.next();
    assert.ok(next.done === false && !next.value.ok);
    assert.equal((await fs.promises.readdir(tmp)).length, 1);
    await generator.return(undefined as never);
    assert.deepEqual(await fs.promises.readdir(tmp), []);

    // A file that breaks part-way (a quote never closed at its end), after runs were written.
    const broken = path.join(dir, 'broken.csv');
    await fs.promises.writeFile(broken, (await fs.promises.readFile(file, 'utf8')) + 'D,"INV-1\r\n');
    await assert.rejects(readAll(broken, options), /is never closed/);
    assert.deepEqual(await fs.promises.readdir(tmp), []);
  },
);

test(
  'memory stays bounded: 300,000 detail lines with 10,000 rows in memory spill 31 runs and never buffer more than 10,000',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const tmp = await tempDir('sealer-test-tmp-');
    const headers = path.join(dir, 'headers.csv');
    const details = path.join(dir, 'details.csv');
    const INVOICES = 10_000;
    const DETAILS = 300_000;
    // Header file in descending order, each invoice's 30 details spread through the detail file.
    await writeCsv(
      headers,
      HEADER_COLUMNS,
      Array.from({ length: INVOICES }, (_, i) => [
        `INV-${INVOICES - i}`,
        '発行者',
        'T1234567890123',
        '2026-11-30',
        '取引先',
        '3000',
      ]),
    );
    const out = fs.createWriteStream(details);
    out.write(csvRecords([DETAIL_COLUMNS]));
    for (let start = 0; start < DETAILS; start += 10_000) {
      const slice = Array.from({ length: 10_000 }, (_, j) => {
        const k = start + j;
        return [`INV-${(k % INVOICES) + 1}`, `品目${k}`, '1', '100', '標準'];
      });
      if (!out.write(csvRecords(slice))) await once(out, 'drain');
    }
    out.end();
    await once(out, 'close');

    const generator = readDataExport(headers, {
      layout: { kind: 'two-files', details },
      mapping: MAPPING,
      maxRowsInMemory: 10_000,
      tmpDir: tmp,
    });
    let invoices = 0;
    let detailRows = 0;
    let previous = 0;
    for (;;) {
      const next = await generator.next();
      if (next.done) {
        const summary = next.value;
        // 310,000 rows in buffers of 10,000: 31 runs, the last buffer written too.
        assert.ok(summary.spilledRuns >= 30);
        assert.equal(summary.spilledRuns, 31);
        assert.equal(summary.largestBuffer, 10_000);
        assert.equal(summary.largestInvoice, 31);
        assert.equal(summary.rows, INVOICES + DETAILS);
        assert.equal(summary.invoices, INVOICES);
        break;
      }
      assert.ok(next.value.ok);
      const invoice = next.value.invoice;
      invoices++;
      detailRows += invoice.details.length;
      const n = Number(invoice.invoiceNumber.slice(4));
      assert.equal(n, previous + 1);
      previous = n;
      assert.equal(invoice.header?.line, INVOICES - n + 2);
      assert.equal(invoice.details.length, 30);
      assert.equal(invoice.details[0]!.line, n + 1);
      assert.equal(invoice.details[29]!.line, n + 1 + 29 * INVOICES);
    }
    assert.equal(invoices, INVOICES);
    assert.equal(detailRows, DETAILS);
    assert.deepEqual(await fs.promises.readdir(tmp), []);
  },
);
