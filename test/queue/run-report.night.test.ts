// A night against real Redis and the sandbox whose export has formula-like customers, a credit note,
// a corrupt PDF and bad rows: when the run settles, finance gets <outbox>/<tenant>/<run date>/runs/
// <run ID>/ with every invoice once in natural order, the rejects, and a summary that agrees with the
// run record; a later run that meets an invoice sealed before reports it as already sealed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { parse } from 'csv-parse/sync';
import { createLogger } from '../../src/common/logger';
import { loadJobs } from '../../src/jobs';
import { openSealQueue, readRun, runNight, sealJobId } from '../../src/queue';
import { readManifest, readRunReportCsv, type RunReportSummary } from '../../src/outbox';
import { writeExportCsv } from '../../src/export';
import { SAMPLE_COLUMNS } from '../../src/demo/sample-exports';
import { startTestSandbox, writeImplicitSakuraJob, writeTenantExport } from '../helpers/night-fixture';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const HEADERS = [
  SAMPLE_COLUMNS.invoiceNumber,
  SAMPLE_COLUMNS.customerName,
  SAMPLE_COLUMNS.amount,
  SAMPLE_COLUMNS.issueDate,
  SAMPLE_COLUMNS.pdfPath,
];

/** Waits for a file to appear (the report is written as the run settles), up to the test's timeout. */
async function waitForFile(file: string): Promise<void> {
  for (;;) {
    try {
      await fs.access(file);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

const FORMULA_START = /^[=+\-@\t\r]/;

test(
  'a settled night leaves finance a run report: every invoice once, neutralised, exact, agreeing with the run',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { redis, prefix, connection } = await testRedis();
    const sandbox = await startTestSandbox(dir);
    const jobsDir = path.join(dir, 'jobs');
    await writeImplicitSakuraJob(dir, jobsDir, sandbox);
    const jobs = await loadJobs(jobsDir);
    const inbox = path.join(dir, 'inbox', 'sakura');
    // Sample PDFs SKR-000001..4; the export below names them under other invoice numbers.
    await writeTenantExport(inbox, 'sakura', 4);
    await fs.rm(path.join(inbox, 'invoices.csv'));
    await fs.writeFile(path.join(inbox, 'pdf', 'corrupt.pdf'), '%PDF-1.7\nnot a PDF body\n%%EOF\n');
    const rows = [
      ['INV-10', '=HYPERLINK("http://x","pay here")', '-5,000', '2026/11/24', 'pdf/SKR-000001.pdf'],
      ['INV-2', '@SUM(A1)', '¥12,345', '2026-11-25', 'pdf/SKR-000002.pdf'],
      ['INV-1', '+81-3-1234-5678', '1,000,000円', '2026-11-26', 'pdf/SKR-000003.pdf'],
      // The reader trims cells: a tab-started customer arrives as "=cmd|..." and must still be neutralised.
      ['INV-3', '\t=cmd|" /C calc"!A0', '0', '2026-11-27', 'pdf/SKR-000004.pdf'],
      ['INV-20', '株式会社青葉商事', '8,800', '2026-11-28', 'pdf/corrupt.pdf'],
      ['INV-BAD', '-Minus Shoji', '12万円', '2026-11-28', 'pdf/SKR-000001.pdf'],
      ['-INV-7', 'Hikari G.K.', '100', '2026-11-28', 'pdf/SKR-000001.pdf'],
      ['INV-NOPDF', '=1+1', '100', '2026-11-28', 'pdf/missing.pdf'],
    ];
    await writeExportCsv(path.join(inbox, 'invoices.csv'), HEADERS, rows, 'utf8-bom');

    const logger = createLogger({
      level: 'debug',
      destination: pino.destination({ dest: path.join(dir, 'night.log'), sync: true }),
    });
    const night = await runNight({ jobs, connection, redis, prefix, logger, concurrency: 8, threads: 1 });
    const run = night.runs[0]!;
    assert.deepEqual(
      [run.counts.rows, run.counts.sealed, run.counts.failed, run.counts.rejected],
      [8, 4, 1, 3],
    );
    const tenantDir = path.join(dir, 'outbox', 'sakura');
    const reportDir = path.join(tenantDir, run.produced.runDate, 'runs', run.produced.runId);
    await waitForFile(path.join(reportDir, 'summary.json'));

    // manifest.csv: BOM, every invoice once in natural order, formula-like cells neutralised in the file.
    const raw = await fs.readFile(path.join(reportDir, 'manifest.csv'), 'utf8');
    assert.ok(raw.startsWith('\uFEFF'), 'UTF-8 BOM');
    const cells = parse(raw, { bom: true, columns: true }) as Record<string, string>[];
    for (const c of cells) {
      for (const [column, value] of Object.entries(c)) {
        if (column === 'amount') continue;
        assert.ok(!FORMULA_START.test(value), `${c.invoiceNumber} ${column}: ${JSON.stringify(value)}`);
      }
    }
    const byCell = Object.fromEntries(cells.map((c) => [c.invoiceNumber, c]));
    assert.equal(byCell['INV-10']!.customer, `'=HYPERLINK("http://x","pay here")`);
    assert.equal(byCell['INV-2']!.customer, "'@SUM(A1)");
    assert.equal(byCell['INV-1']!.customer, "'+81-3-1234-5678");
    assert.equal(byCell['INV-3']!.customer, `'=cmd|" /C calc"!A0`);

    const report = await readRunReportCsv(path.join(reportDir, 'manifest.csv'));
    assert.deepEqual(
      report.map((r) => r.invoiceNumber),
      ['INV-1', 'INV-2', 'INV-3', 'INV-10', 'INV-20'],
    );
    const by = Object.fromEntries(report.map((r) => [r.invoiceNumber, r]));
    assert.equal(by['INV-10']!.customer, '=HYPERLINK("http://x","pay here")');
    assert.deepEqual(
      report.map((r) => [r.invoiceNumber, r.amount, r.issueDate]),
      [
        ['INV-1', '1000000', '2026-11-26'],
        ['INV-2', '12345', '2026-11-25'],
        ['INV-3', '0', '2026-11-27'],
        ['INV-10', '-5000', '2026-11-24'],
        ['INV-20', '8800', '2026-11-28'],
      ],
    );
    assert.equal(by['INV-20']!.status, 'failed');
    assert.ok(by['INV-20']!.failureKind, 'failure kind given');
    assert.match(by['INV-20']!.failureReason!, /INV-20/);
    assert.equal(by['INV-20']!.file, '');
    for (const inv of ['INV-1', 'INV-2', 'INV-3', 'INV-10']) {
      const r = by[inv]!;
      assert.equal(r.status, 'sealed', inv);
      assert.equal(r.file, `${run.produced.runDate}/${inv}.pdf`);
      const sealed = await fs.readFile(path.join(tenantDir, r.file!));
      assert.equal(r.sealedSha256, crypto.createHash('sha256').update(sealed).digest('hex'), inv);
      assert.match(r.sealedAtJst!, /\+09:00$/);
      assert.match(r.sealedAtUtc!, /Z$/);
      assert.equal(new Date(r.sealedAtJst!).getTime(), new Date(r.sealedAtUtc!).getTime(), inv);
      assert.equal(
        r.sealedAtJst!.slice(0, 19),
        new Date(new Date(r.sealedAtUtc!).getTime() + 9 * 3600_000).toISOString().slice(0, 19),
      );
      assert.ok(r.certificateSerial, inv);
      assert.equal(r.level, jobs[0]!.signing.level);
      assert.equal(r.exportFile, 'invoices.csv');
    }

    // The date folder's live manifest carries the facts as well.
    const live = await readManifest(path.join(tenantDir, run.produced.runDate, 'manifest.csv'));
    assert.equal(
      live.find((r) => r.invoiceNumber === 'INV-10')?.customer,
      '=HYPERLINK("http://x","pay here")',
    );
    assert.equal(live.find((r) => r.invoiceNumber === 'INV-10')?.amount, '-5000');

    // rejects.csv: the rejected lines, neutralised.
    const rejectsRaw = await fs.readFile(path.join(reportDir, 'rejects.csv'), 'utf8');
    assert.ok(rejectsRaw.startsWith('\uFEFF'));
    assert.match(rejectsRaw, /,'-INV-7,/);
    const rejects = await readRunReportCsv(path.join(reportDir, 'rejects.csv'));
    assert.deepEqual(
      rejects.map((r) => [r.exportFile, r.line, r.invoiceNumber]),
      [
        ['invoices.csv', '7', 'INV-BAD'],
        ['invoices.csv', '8', '-INV-7'],
        ['invoices.csv', '9', 'INV-NOPDF'],
      ],
    );
    for (const r of rejects) assert.ok(r.reason, `line ${r.line} has a reason`);

    // summary.json agrees with the run record and names files that exist.
    const summary = JSON.parse(
      await fs.readFile(path.join(reportDir, 'summary.json'), 'utf8'),
    ) as RunReportSummary;
    const record = await readRun(redis, prefix, run.produced.runId);
    for (const k of [
      'rows',
      'enqueued',
      'duplicates',
      'rejected',
      'sealed',
      'alreadySealed',
      'failed',
    ] as const) {
      assert.equal(summary.counts[k], record[k], k);
    }
    assert.deepEqual(summary.listed, { sealed: 4, alreadySealed: 0, failed: 1, rejects: 3 });
    assert.equal(summary.runId, run.produced.runId);
    assert.equal(summary.tenant, 'sakura');
    assert.equal(summary.runDate, run.produced.runDate);
    assert.equal(summary.level, jobs[0]!.signing.level);
    assert.equal(new Date(summary.endedAt.jst).getTime(), new Date(summary.endedAt.utc).getTime());
    assert.equal(summary.endedAt.utc, record.settledAt);
    for (const f of Object.values(summary.files)) await fs.access(path.join(reportDir, f));
    assert.equal(path.join(tenantDir, summary.folder), reportDir);

    // A later run meets INV-2 again after its job left Redis: sealed before, so "already sealed",
    // naming the earlier file and the run that sealed it.
    const queue = openSealQueue(connection, prefix);
    after(() => queue.close());
    const [first] = await readManifest(path.join(tenantDir, run.produced.runDate, 'manifest.csv')).then((m) =>
      m.filter((r) => r.invoiceNumber === 'INV-2'),
    );
    assert.equal(
      await queue
        .forTenant('sakura')
        .remove(sealJobId({ tenant: 'sakura', invoiceNumber: 'INV-2', sourceSha256: first!.sourceSha256 })),
      1,
    );
    await writeExportCsv(path.join(inbox, 'invoices-2.csv'), HEADERS, [rows[1]!], 'utf8-bom');
    const nextDay = new Date(Date.now() + 86_400_000);
    const second = await runNight({ jobs, connection, redis, prefix, logger, now: nextDay, threads: 1 });
    const run2 = second.runs[0]!;
    assert.equal(run2.counts.alreadySealed, 1);
    assert.notEqual(run2.produced.runDate, run.produced.runDate);
    const report2Dir = path.join(tenantDir, run2.produced.runDate, 'runs', run2.produced.runId);
    await waitForFile(path.join(report2Dir, 'summary.json'));
    const [again] = await readRunReportCsv(path.join(report2Dir, 'manifest.csv'));
    assert.equal(again!.invoiceNumber, 'INV-2');
    assert.equal(again!.status, 'already sealed');
    assert.equal(again!.file, `${run.produced.runDate}/INV-2.pdf`);
    assert.equal(again!.sealedByRun, run.produced.runId);
    assert.equal(again!.customer, '@SUM(A1)');
    assert.equal(again!.sealedAtUtc, by['INV-2']!.sealedAtUtc);
    const summary2 = JSON.parse(
      await fs.readFile(path.join(report2Dir, 'summary.json'), 'utf8'),
    ) as RunReportSummary;
    assert.deepEqual(summary2.listed, { sealed: 0, alreadySealed: 1, failed: 0, rejects: 0 });
    await fs.access(path.join(tenantDir, again!.file!));
  },
);
