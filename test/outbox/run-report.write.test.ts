// The run report the outbox writes for finance from what the queue knows of a run: every invoice once
// in natural order with what its sealed file's manifest row says, the rejects, and a summary that names
// only files that exist; rewritten whole when the run settles again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  appendManifestRow,
  manifestFacts,
  readRunReportCsv,
  recordSealed,
  runReportDir,
  writeRunReport,
  OutboxError,
  type RunReportInput,
  type RunReportSummary,
} from '../../src/outbox';
import { tempDir } from '../helpers/temp-dir';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const RUN = 'acme-nightly-20261201-020000-000';
const EARLIER_RUN = 'acme-nightly-20261130-020000-000';
const sha = (c: string) => c.repeat(64);

async function seal(
  root: string,
  day: string,
  runId: string,
  invoice: string,
  source: string,
  at: string,
  customer: string,
): Promise<string> {
  const dir = path.join(root, 'acme', day);
  const file = path.join(dir, `${invoice}.pdf`);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(file, `%PDF sealed ${invoice}`);
  await appendManifestRow(dir, {
    invoiceNumber: invoice,
    file: `${invoice}.pdf`,
    sealedSha256: sha('e'),
    sourceSha256: sha(source),
    signingTime: at,
    certificateSerial: '0a1b2c',
    job: 'acme-nightly',
    runId,
    level: 'B-LTA',
    ...manifestFacts({ customer, amount: 1234, issueDate: '2026-11-20' }, at),
    status: 'sealed',
  });
  await recordSealed(root, 'acme', invoice, sha(source), file, runId);
  return file;
}

function input(): RunReportInput {
  return {
    runId: RUN,
    job: 'acme-nightly',
    tenant: 'acme',
    runDate: '2026-12-01',
    startedAt: '2026-11-30T17:00:00.000Z',
    endedAt: '2026-11-30T17:05:00.000Z',
    level: 'B-LTA',
    counts: { rows: 6, enqueued: 4, duplicates: 0, rejected: 2, sealed: 2, alreadySealed: 1, failed: 1 },
    invoices: [
      {
        invoiceNumber: 'INV-10',
        sourceSha256: sha('a'),
        status: 'sealed',
        customer: '=HYPERLINK("http://x")',
        amount: -5000,
        issueDate: '2026-11-24',
        line: 2,
        exportFile: '/in/acme/invoices.csv',
      },
      {
        invoiceNumber: 'INV-3',
        sourceSha256: sha('c'),
        status: 'already sealed',
        line: 4,
        exportFile: '/in/acme/invoices.csv',
      },
      {
        invoiceNumber: 'INV-1',
        sourceSha256: sha('d'),
        status: 'failed',
        customer: '@SUM(A1)',
        amount: 0,
        line: 5,
        failure: { kind: 'unsealable', reason: 'not a PDF', attempts: 1 },
      },
      {
        invoiceNumber: 'INV-2',
        sourceSha256: sha('b'),
        status: 'sealed',
        customer: '+81 3 1234',
        amount: 1_000_000,
        line: 3,
      },
    ],
    rejects: [
      {
        exportFile: 'invoices.csv',
        line: 9,
        invoiceNumber: 'BAD-9',
        reason: '-12万円 is not a whole-yen amount',
      },
      { exportFile: 'invoices.csv', line: 7, reason: 'invoiceNumber is empty' },
    ],
  };
}

test(
  'the report lists every invoice once in natural order, with its sealed file, times, level and failure',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    await seal(root, '2026-12-01', RUN, 'INV-10', 'a', '2026-11-30T17:01:00.000Z', 'ignored');
    await seal(root, '2026-12-01', RUN, 'INV-2', 'b', '2026-11-30T17:02:00.000Z', 'ignored');
    await seal(
      root,
      '2026-11-30',
      EARLIER_RUN,
      'INV-3',
      'c',
      '2026-11-29T16:00:00.000Z',
      'Earlier Customer K.K.',
    );

    const files = await writeRunReport(root, input());
    assert.equal(files.dir, path.join(root, 'acme', '2026-12-01', 'runs', RUN));
    const raw = await fs.readFile(files.manifest, 'utf8');
    assert.ok(raw.startsWith('\uFEFFinvoiceNumber,customer,amount,issueDate,status,'));
    assert.match(raw, /^INV-10,"'=HYPERLINK/m, 'formula-like customer neutralised in the file');

    const rows = await readRunReportCsv(files.manifest);
    assert.deepEqual(
      rows.map((r) => [r.invoiceNumber, r.status]),
      [
        ['INV-1', 'failed'],
        ['INV-2', 'sealed'],
        ['INV-3', 'already sealed'],
        ['INV-10', 'sealed'],
      ],
    );
    const by = Object.fromEntries(rows.map((r) => [r.invoiceNumber, r]));
    assert.equal(by['INV-10']!.customer, '=HYPERLINK("http://x")');
    assert.equal(by['INV-10']!.amount, '-5000');
    assert.equal(by['INV-10']!.file, '2026-12-01/INV-10.pdf');
    assert.equal(by['INV-10']!.sealedAtUtc, '2026-11-30T17:01:00.000Z');
    assert.equal(by['INV-10']!.sealedAtJst, '2026-12-01T02:01:00.000+09:00');
    assert.equal(by['INV-10']!.level, 'B-LTA');
    assert.equal(by['INV-10']!.certificateSerial, '0a1b2c');
    assert.equal(by['INV-10']!.exportFile, 'invoices.csv');
    assert.equal(by['INV-10']!.line, '2');
    // Already sealed: the earlier file, the run that sealed it, and the facts its manifest row has.
    assert.equal(by['INV-3']!.file, '2026-11-30/INV-3.pdf');
    assert.equal(by['INV-3']!.sealedByRun, EARLIER_RUN);
    assert.equal(by['INV-3']!.customer, 'Earlier Customer K.K.');
    assert.equal(by['INV-3']!.sealedAtJst, '2026-11-30T01:00:00.000+09:00');
    assert.equal(by['INV-1']!.failureKind, 'unsealable');
    assert.equal(by['INV-1']!.failureReason, 'not a PDF');
    assert.equal(by['INV-1']!.file, '');
    assert.equal(by['INV-1']!.customer, '@SUM(A1)');

    const rejects = await readRunReportCsv(files.rejects);
    assert.deepEqual(
      rejects.map((r) => [r.line, r.invoiceNumber, r.reason]),
      [
        ['7', '', 'invoiceNumber is empty'],
        ['9', 'BAD-9', '-12万円 is not a whole-yen amount'],
      ],
    );
    assert.match(await fs.readFile(files.rejects, 'utf8'), /,'-12万円/);

    const summary = JSON.parse(await fs.readFile(files.summary, 'utf8')) as RunReportSummary;
    assert.equal(summary.runId, RUN);
    assert.deepEqual(summary.endedAt, {
      utc: '2026-11-30T17:05:00.000Z',
      jst: '2026-12-01T02:05:00.000+09:00',
    });
    assert.deepEqual(summary.listed, { sealed: 2, alreadySealed: 1, failed: 1, rejects: 2 });
    assert.equal(summary.counts.sealed, 2);
    for (const f of Object.values(summary.files)) await fs.access(path.join(files.dir, f));
    await fs.access(path.join(root, 'acme', summary.folder, 'summary.json'));
  },
);

test(
  'a run settled again gets its report replaced whole, with no temp file left behind',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    await seal(root, '2026-12-01', RUN, 'INV-10', 'a', '2026-11-30T17:01:00.000Z', 'x');
    await seal(root, '2026-12-01', RUN, 'INV-2', 'b', '2026-11-30T17:02:00.000Z', 'x');
    const first = await writeRunReport(root, input());
    const before = await readRunReportCsv(first.manifest);
    assert.equal(before.find((r) => r.invoiceNumber === 'INV-1')?.status, 'failed');

    // `sealer retry` sealed INV-1 and the run settled again.
    await seal(root, '2026-12-01', RUN, 'INV-1', 'd', '2026-11-30T18:00:00.000Z', 'x');
    const again = input();
    again.invoices = again.invoices.map((i) =>
      i.invoiceNumber === 'INV-1' ? { ...i, status: 'sealed', failure: undefined } : i,
    );
    again.counts = { ...again.counts, sealed: 3, failed: 0 };
    const second = await writeRunReport(root, again);
    assert.equal(second.dir, first.dir);
    const after = await readRunReportCsv(second.manifest);
    assert.equal(after.length, 4);
    assert.equal(after.find((r) => r.invoiceNumber === 'INV-1')?.status, 'sealed');
    assert.equal(after.find((r) => r.invoiceNumber === 'INV-1')?.file, '2026-12-01/INV-1.pdf');
    const summary = JSON.parse(await fs.readFile(second.summary, 'utf8')) as RunReportSummary;
    assert.equal(summary.listed.failed, 0);
    assert.deepEqual((await fs.readdir(second.dir)).sort(), ['manifest.csv', 'rejects.csv', 'summary.json']);
  },
);

test(
  'a report of more invoices than one chunk lists each once, in natural order, header once',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const root = await tempDir();
    const n = 5000; // more than two of the report's chunks of rows
    const order = Array.from({ length: n }, (_, i) => i + 1).sort(
      (a, b) => ((a * 7919) % n) - ((b * 7919) % n),
    );
    const files = await writeRunReport(root, {
      ...input(),
      counts: { rows: n, enqueued: n, duplicates: 0, rejected: 0, sealed: 0, alreadySealed: 0, failed: n },
      invoices: order.map((i) => ({
        invoiceNumber: `INV-${i}`,
        status: 'failed' as const,
        line: i + 1,
        failure: { kind: 'unsealable', reason: `reason ${i}`, attempts: 1 },
      })),
      rejects: [],
    });
    const raw = await fs.readFile(files.manifest, 'utf8');
    assert.equal(raw.split('invoiceNumber,customer').length, 2, 'one header');
    const rows = await readRunReportCsv(files.manifest);
    assert.deepEqual(
      rows.map((r) => r.invoiceNumber),
      Array.from({ length: n }, (_, i) => `INV-${i + 1}`),
    );
    assert.equal(rows[4999]!.failureReason, 'reason 5000');
  },
);

test('runReportDir refuses a run ID or tenant that would leave its folder', () => {
  assert.throws(() => runReportDir('/out', 'acme', '2026-12-01', '../x'), OutboxError);
  assert.throws(() => runReportDir('/out', '..', '2026-12-01', RUN), OutboxError);
  assert.equal(runReportDir('/out', 'acme', '2026-12-01', RUN), `/out/acme/2026-12-01/runs/${RUN}`);
});
