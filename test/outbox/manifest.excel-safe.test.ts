// The live manifest for finance: the invoice's facts and both seal times, every text cell neutralised
// for Excel (OWASP CSV injection), read back exactly by the readers renewal and repair use, and a
// manifest started under an older header keeping its shape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import {
  appendManifestRow,
  findManifestRow,
  latestManifestRows,
  manifestFacts,
  readManifest,
  type ManifestRow,
} from '../../src/outbox';
import { excelRead, excelSafe } from '../../src/common/excel-cell';
import { toJst } from '../../src/common/japan-time';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const NASTY = [
  '=HYPERLINK("http://x","click")',
  '@SUM(A1)',
  '+81-3-1234-5678',
  '-2+3',
  '\tTabbed K.K.',
  '\rCarriage K.K.',
  "'=already quoted",
  "'plain apostrophe",
  '株式会社青葉商事, 本社',
];

function row(i: number, customer: string, amount: number): ManifestRow {
  return {
    invoiceNumber: `INV-${i}`,
    file: `INV-${i}.pdf`,
    sealedSha256: String(i % 10).repeat(64),
    sourceSha256: 'b'.repeat(64),
    signingTime: '2026-11-30T17:30:00.123Z',
    certificateSerial: '0a1b',
    job: 'acme-nightly',
    runId: 'acme-nightly-20261201-023000-123',
    level: 'B-T',
    ...manifestFacts({ customer, amount, issueDate: '2026-11-24' }, '2026-11-30T17:30:00.123Z'),
    status: 'sealed',
  };
}

test('excelSafe neutralises formula starts, keeps plain integers, and excelRead undoes it exactly', () => {
  for (const v of NASTY) {
    const cell = excelSafe(v);
    assert.ok(!/^[=+\-@\t\r]/.test(cell), `${JSON.stringify(cell)} must not start like a formula`);
    assert.equal(excelRead(cell), v);
  }
  assert.equal(excelSafe('=1+1'), "'=1+1");
  assert.equal(excelSafe('-5000'), '-5000', 'a credit note amount stays a number');
  assert.equal(excelSafe('-5000x'), "'-5000x");
  assert.equal(excelSafe('12345'), '12345');
  assert.equal(excelRead('-5000'), '-5000');
});

test(
  'manifest rows carry customer, amount, issue date, JST and UTC; formula-like cells start with an apostrophe',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const rows = NASTY.map((c, i) => row(i + 1, c, i === 3 ? -5000 : 10_000 + i));
    for (const r of rows) await appendManifestRow(dir, r);
    const raw = await fs.readFile(path.join(dir, 'manifest.csv'), 'utf8');
    assert.ok(raw.startsWith('\uFEFFinvoiceNumber,'), 'BOM and header');
    // What Excel sees: the cells as stored, before our reader undoes anything.
    const cells = parse(raw, { bom: true, columns: true }) as Record<string, string>[];
    assert.equal(cells.length, rows.length);
    for (const [i, c] of cells.entries()) {
      assert.ok(!/^[=+\-@\t\r]/.test(c.customer!), `row ${i}: ${JSON.stringify(c.customer)}`);
      assert.equal(c.sealedAtUtc, '2026-11-30T17:30:00.123Z');
      assert.equal(c.sealedAtJst, '2026-12-01T02:30:00.123+09:00');
      assert.equal(c.status, 'sealed');
    }
    assert.equal(cells[0]!.customer, `'=HYPERLINK("http://x","click")`);
    assert.equal(cells[1]!.customer, "'@SUM(A1)");
    assert.equal(cells[2]!.customer, "'+81-3-1234-5678");
    assert.equal(cells[4]!.customer, "'\tTabbed K.K.");
    assert.equal(cells[3]!.amount, '-5000', 'amounts stay numeric');
    assert.equal(cells[0]!.amount, '10000');

    // Our readers give back the values as they were.
    const read = await readManifest(path.join(dir, 'manifest.csv'));
    assert.deepEqual(
      read.map((r) => r.customer),
      NASTY,
    );
    assert.deepEqual(
      read.map((r) => Number(r.amount)),
      rows.map((r) => Number(r.amount)),
    );
    const found = await findManifestRow(dir, 'INV-1', rows[0]!.sealedSha256);
    assert.equal(found?.customer, NASTY[0]);
    const latest = await latestManifestRows(dir);
    assert.equal(latest.get('INV-5')?.customer, '\tTabbed K.K.');

    // A renewal appends the row it read with a new digest: it stays the same row for Excel and for us.
    const renewed = { ...latest.get('INV-1')!, sealedSha256: 'f'.repeat(64), status: 'renewed' };
    await appendManifestRow(dir, renewed);
    const after = (await latestManifestRows(dir)).get('INV-1')!;
    assert.equal(after.customer, NASTY[0]);
    assert.equal(after.status, 'renewed');
    assert.equal(after.sealedAtJst, '2026-12-01T02:30:00.123+09:00');
  },
);

test(
  'a manifest started with an older header keeps its shape when new rows are appended',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const old = 'invoiceNumber,file,sealedSha256,sourceSha256,signingTime,certificateSerial,job,runId,level';
    await fs.writeFile(
      path.join(dir, 'manifest.csv'),
      `\uFEFF${old}\r\nINV-0,INV-0.pdf,${'c'.repeat(64)},${'b'.repeat(64)},2026-11-01T00:00:00.000Z,0a1b,acme-nightly,r0,B-T\r\n`,
    );
    await appendManifestRow(dir, row(7, '=cmd', 1));
    const lines = (await fs.readFile(path.join(dir, 'manifest.csv'), 'utf8')).split('\r\n').filter(Boolean);
    assert.equal(lines.length, 3);
    for (const l of lines) assert.equal(l.replace(/^\uFEFF/, '').split(',').length, 9, l);
    const read = await readManifest(path.join(dir, 'manifest.csv'));
    assert.equal(read[1]!.invoiceNumber, 'INV-7');
    assert.equal(read[1]!.customer, undefined, 'the old shape has no customer column');
    assert.equal(read[1]!.level, 'B-T');
  },
);

test('toJst is UTC+9 without daylight saving, across a date line', () => {
  assert.equal(toJst('2026-12-31T15:00:00.000Z'), '2027-01-01T00:00:00.000+09:00');
  assert.equal(toJst('2026-07-01T00:00:00.000Z'), '2026-07-01T09:00:00.000+09:00');
  assert.equal(new Date(toJst('2026-03-29T01:02:03.004Z')).toISOString(), '2026-03-29T01:02:03.004Z');
});
