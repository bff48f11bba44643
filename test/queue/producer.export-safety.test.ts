// The producer takes an export only when it is complete (quiet period by the producer's clock, or a
// marker), refuses a file whose last line is cut, rejects invoice numbers that clash by case with one
// the tenant already enqueued, re-queues failed jobs found in one round trip per chunk, and two
// producers of one export both succeed with exact counts.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import pino from 'pino';
import { UnrecoverableError, Worker } from 'bullmq';
import { loadJobFile } from '../../src/jobs';
import {
  invoiceCaseKey,
  openSealQueue,
  produceRun,
  readRun,
  sealJobData,
  type StoredSealJobData,
} from '../../src/queue';
import { writeExportCsv } from '../../src/export';
import { csvLine } from '../../src/export/csv-write';
import { writeSampleExport, SAMPLE_COLUMNS } from '../../src/demo/sample-exports';
import { renderSampleInvoice } from '../../src/pdf';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { listCredentialLatches, RedisAuthorisationGuards } from '../../src/custody';
import { recordSealed } from '../../src/outbox';

const logger = pino({ level: 'silent' });
const TIMEOUT = { timeout: 180_000 };
const HEADERS = [
  SAMPLE_COLUMNS.invoiceNumber,
  SAMPLE_COLUMNS.customerName,
  SAMPLE_COLUMNS.amount,
  SAMPLE_COLUMNS.issueDate,
  SAMPLE_COLUMNS.pdfPath,
];
/** A fixed clock: the producer's `now`, and the mtimes the tests give the exports. */
const T0 = new Date('2026-11-30T16:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);

async function setup(ready?: Record<string, unknown>) {
  const dir = await tempDir();
  const t = await testRedis();
  const inbox = path.join(dir, 'inbox');
  await fs.mkdir(path.join(inbox, 'pdf'), { recursive: true });
  const jobFile = path.join(dir, 'acme.json');
  await fs.writeFile(
    jobFile,
    JSON.stringify({
      name: 'acme-nightly',
      cron: '0 2 * * *',
      tenant: 'acme',
      export: { folder: 'inbox', columns: SAMPLE_COLUMNS, ...(ready ? { ready } : {}) },
      signing: { clientId: 'acme-app', clientSecret: 'env:NOPE', credentialId: 'acme-cred' },
      outbox: 'outbox',
    }),
  );
  const job = await loadJobFile(jobFile);
  const queue = openSealQueue(t.connection, t.prefix);
  after(() => queue.close());
  const opts = { queue, redis: t.redis, prefix: t.prefix, logger };
  return { dir, inbox, job, queue, opts, ...t };
}

/** Distinct PDFs (the job ID holds the PDF digest) and their rows. */
async function invoiceRows(inbox: string, numbers: string[]): Promise<string[][]> {
  const rows: string[][] = [];
  for (const n of numbers) {
    const file = path.join(inbox, 'pdf', `${n}.pdf`);
    await fs.access(file).catch(async () =>
      fs.writeFile(
        file,
        await renderSampleInvoice({
          tenantName: 'Acme',
          invoiceNumber: n,
          customerName: 'X',
          amount: 1,
          issueDate: '2026-11-24',
        }),
      ),
    );
    rows.push([n, '株式会社テスト', '1,000', '2026/11/24', `pdf/${n}.pdf`]);
  }
  return rows;
}

function csvLines(rows: string[][]): string {
  return rows.map(csvLine).join('');
}

async function inboxFiles(inbox: string): Promise<string[]> {
  return (await fs.readdir(inbox)).sort();
}

test(
  'an export still being written is left in place until it has been quiet for the period, by the producer clock',
  TIMEOUT,
  async () => {
    const { inbox, job, queue, opts } = await setup();
    assert.deepEqual(job.export.ready, { quietSec: 60 }, 'the default is a 60 s quiet period');
    const file = path.join(inbox, 'invoices.csv');
    const rows = await invoiceRows(inbox, ['Q-1', 'Q-2', 'Q-3', 'Q-4', 'Q-5', 'Q-6']);
    // The core system has written the first half (whole lines) at T0 ...
    await writeExportCsv(file, HEADERS, rows.slice(0, 3), 'utf8', T0);
    const early = await produceRun(job, { ...opts, now: at(10_000) });
    assert.deepEqual(early.files, []);
    assert.deepEqual(early.failedFiles, []);
    assert.equal(early.notReady.length, 1);
    assert.equal(early.notReady[0]!.file, file);
    assert.match(
      early.notReady[0]!.reason,
      /modified at 2026-11-30T16:00:00\.000Z, 10 s before the run: not yet quiet for 60 s/,
    );
    assert.equal(await queue.count(), 0);
    assert.deepEqual(await inboxFiles(inbox), ['invoices.csv', 'pdf']);
    assert.match(
      String((await readRun(opts.redis, opts.prefix, early.runId))['notReady:invoices.csv']),
      /not yet quiet/,
    );

    // ... and the second half 30 s later: 70 s after T0 the file is only 40 s quiet.
    await fs.appendFile(file, csvLines(rows.slice(3)));
    await fs.utimes(file, at(30_000), at(30_000));
    const stillWriting = await produceRun(job, { ...opts, now: at(70_000) });
    assert.deepEqual(stillWriting.files, []);
    assert.match(stillWriting.notReady[0]!.reason, /40 s before the run/);
    assert.equal(await queue.count(), 0);

    // Quiet for the whole period: every row of the complete file is taken, and only now it moves.
    const done = await produceRun(job, { ...opts, now: at(90_000) });
    assert.deepEqual(done.notReady, []);
    assert.deepEqual(done.totals, { rows: 6, enqueued: 6, duplicates: 0, alreadySealed: 0, rejected: 0 });
    assert.equal(await queue.count(), 6);
    assert.deepEqual(await inboxFiles(inbox), ['pdf', 'processed']);
  },
);

test(
  'an export that grows while the producer reads it is not moved; what was read is queued once',
  TIMEOUT,
  async () => {
    const { inbox, job, queue, opts } = await setup({ quietSec: 60 });
    const file = path.join(inbox, 'invoices.csv');
    const rows = await invoiceRows(
      inbox,
      Array.from({ length: 12 }, (_, i) => `G-${i + 1}`),
    );
    await writeExportCsv(file, HEADERS, rows.slice(0, 8), 'utf8', T0);
    let appended = false;
    const first = await produceRun(job, {
      ...opts,
      now: at(3_600_000),
      chunkSize: 3,
      // The core system appends while the producer is between two chunks (synchronously, so the
      // append has landed before the producer goes on).
      onProgress: () => {
        if (appended) return;
        appended = true;
        fsSync.appendFileSync(file, csvLines(rows.slice(8)));
      },
    });
    assert.ok(appended);
    assert.deepEqual(first.failedFiles, []);
    assert.equal(first.files.length, 1);
    assert.equal(first.files[0]!.processedTo, undefined);
    assert.match(first.files[0]!.leftInPlace ?? '', /changed while it was read/);
    assert.equal(first.notReady[0]!.file, file);
    // Only the 8 rows whose lines were complete when the read began are read and queued.
    assert.deepEqual(first.totals, { rows: 8, enqueued: 8, duplicates: 0, alreadySealed: 0, rejected: 0 });
    assert.deepEqual(await inboxFiles(inbox), ['invoices.csv', 'pdf']);

    // Once quiet, a later run takes all 12: the 8 are duplicates.
    const mtime = (await fs.stat(file)).mtime;
    const later = await produceRun(job, { ...opts, now: new Date(mtime.getTime() + 61_000) });
    assert.deepEqual(later.totals, { rows: 12, enqueued: 4, duplicates: 8, alreadySealed: 0, rejected: 0 });
    assert.equal(await queue.count(), 12);
    assert.ok(later.files[0]!.processedTo);
  },
);

test(
  'an export whose last line is cut is refused, names the file, queues nothing and stays in place',
  TIMEOUT,
  async () => {
    const { inbox, job, queue, opts } = await setup();
    const file = path.join(inbox, 'invoices.csv');
    const rows = await invoiceRows(inbox, ['C-1', 'C-2']);
    // The last row stops inside its PDF path: "pdf/C-" would otherwise be a row of its own.
    await fs.writeFile(file, `${HEADERS.join(',')}\r\n${csvLines(rows)}C-3,株式会社,1000,2026/11/24,pdf/C-`);
    await fs.utimes(file, T0, T0);
    const result = await produceRun(job, { ...opts, now: at(3_600_000) });
    assert.deepEqual(result.files, []);
    assert.equal(result.failedFiles.length, 1);
    assert.equal(result.failedFiles[0]!.file, file);
    assert.ok(result.failedFiles[0]!.error.includes(file));
    assert.match(
      result.failedFiles[0]!.error,
      /the last line is cut \(the file does not end with a line break/,
    );
    assert.equal(await queue.count(), 0);
    assert.deepEqual(await inboxFiles(inbox), ['invoices.csv', 'pdf']);
  },
);

test(
  'marker mode takes only exports with a current marker, and removes the marker with the export',
  TIMEOUT,
  async () => {
    const { inbox, job, queue, opts } = await setup({ marker: '.done' });
    const a = path.join(inbox, 'a.csv');
    const b = path.join(inbox, 'b.csv');
    await writeExportCsv(a, HEADERS, await invoiceRows(inbox, ['M-1', 'M-2']), 'utf8', T0);
    await writeExportCsv(b, HEADERS, await invoiceRows(inbox, ['M-3']), 'utf8', T0);
    await fs.writeFile(`${a}.done`, '');
    await fs.utimes(`${a}.done`, at(1000), at(1000));
    // b's marker is older than b: it vouched for an earlier export of that name.
    await fs.writeFile(`${b}.done`, '');
    await fs.utimes(`${b}.done`, at(-1000), at(-1000));

    // Marker mode does not wait for a quiet period: `now` is the same second as the exports.
    const first = await produceRun(job, { ...opts, now: at(1000) });
    assert.deepEqual(
      first.files.map((f) => [path.basename(f.file), f.enqueued]),
      [['a.csv', 2]],
    );
    assert.deepEqual(first.notReady, [
      {
        file: b,
        reason: `marker ${b}.done is older than the export: the export changed after it was marked complete`,
      },
    ]);
    assert.deepEqual(await inboxFiles(inbox), ['b.csv', 'b.csv.done', 'pdf', 'processed']);
    assert.deepEqual(await fs.readdir(path.join(inbox, 'processed')), [`${first.runId}-a.csv`]);

    // No marker at all: not taken either.
    await fs.rm(`${b}.done`);
    const second = await produceRun(job, { ...opts, now: at(2000) });
    assert.deepEqual(second.files, []);
    assert.deepEqual(second.notReady, [
      { file: b, reason: `no marker ${b}.done yet: the export is not marked complete` },
    ]);

    // The core system marks it complete: taken, marker gone.
    await fs.writeFile(`${b}.done`, '');
    const third = await produceRun(job, { ...opts, now: at(3000) });
    assert.deepEqual(third.totals, { rows: 1, enqueued: 1, duplicates: 0, alreadySealed: 0, rejected: 0 });
    assert.deepEqual(await inboxFiles(inbox), ['pdf', 'processed']);
    assert.equal(await queue.count(), 3);
  },
);

test(
  'an invoice number that differs only in case from one the tenant enqueued from an earlier export is rejected',
  TIMEOUT,
  async () => {
    const { inbox, job, queue, opts, redis, prefix } = await setup();
    const first = path.join(inbox, 'first.csv');
    await writeExportCsv(first, HEADERS, await invoiceRows(inbox, ['XCASE-001', 'K-1']), 'utf8', T0);
    const r1 = await produceRun(job, { ...opts, now: at(3_600_000) });
    assert.deepEqual(r1.totals, { rows: 2, enqueued: 2, duplicates: 0, alreadySealed: 0, rejected: 0 });
    assert.equal(await redis.hget(invoiceCaseKey(prefix, 'acme'), 'xcase-001'), 'XCASE-001');

    // A later export of the same tenant: xcase-001 clashes with the XCASE-001 enqueued before; K-1 with
    // new PDF bytes is a new job (same number, same case: the ordinary path); CON is unsafe.
    const second = path.join(inbox, 'second.csv');
    const rows = await invoiceRows(inbox, ['xcase-001', 'K-2']);
    await fs.writeFile(path.join(inbox, 'pdf', 'K-1-v2.pdf'), 'changed bytes');
    rows.push(['K-1', '株式会社テスト', '1,000', '2026/11/24', 'pdf/K-1-v2.pdf']);
    rows.push(['CON', '株式会社テスト', '1,000', '2026/11/24', 'pdf/K-2.pdf']);
    await writeExportCsv(second, HEADERS, rows, 'utf8', T0);
    const r2 = await produceRun(job, { ...opts, now: at(7_200_000) });
    assert.deepEqual(r2.totals, { rows: 4, enqueued: 2, duplicates: 0, alreadySealed: 0, rejected: 2 });
    assert.equal(await queue.count(), 4);
    const rejectsFile = r2.files[0]!.rejectsFile!;
    const back = parse(await fs.readFile(rejectsFile), { bom: true, columns: true }) as Record<
      string,
      string
    >[];
    assert.deepEqual(
      back.map((r) => [r.line, r.invoiceNumber, r.reason]),
      [
        [
          '5',
          'CON',
          '請求書番号 (invoiceNumber): "CON" is a reserved Windows device name (it becomes a file name)',
        ],
        [
          '2',
          'xcase-001',
          'invoice number xcase-001 differs only in letter case from XCASE-001, which tenant acme already ' +
            'enqueued from an earlier export (the two would clash on a case-insensitive share)',
        ],
      ],
    );
    // The first export again: the same numbers in the same case are plain duplicates.
    await fs.rename(r1.files[0]!.processedTo!, first);
    const r3 = await produceRun(job, { ...opts, now: at(10_800_000) });
    assert.deepEqual(r3.totals, { rows: 2, enqueued: 0, duplicates: 2, alreadySealed: 0, rejected: 0 });
    const queued = (await queue.getJobs(['waiting'])).map((j) => j.data.invoiceNumber).sort();
    assert.deepEqual(queued, ['K-1', 'K-1', 'K-2', 'XCASE-001']);
  },
);

test(
  'a re-run re-queues the invoice whose job failed for good and counts the rest as already sealed',
  TIMEOUT,
  async () => {
    const { inbox, job, queue, opts, connection, prefix } = await setup();
    await writeSampleExport({
      dir: inbox,
      tenantName: 'Acme',
      invoicePrefix: 'F',
      count: 5,
      encoding: 'utf8',
    });
    const first = await produceRun(job, { ...opts, chunkSize: 2 });
    assert.equal(first.totals.enqueued, 5);
    let settled = 0;
    let allSettled!: () => void;
    const settledAll = new Promise<void>((resolve) => (allSettled = resolve));
    const worker = new Worker<StoredSealJobData>(
      queue.forTenant(job.tenant).name,
      async (j) => {
        // Redis holds the data less what the job ID says; the seal worker makes it whole so.
        const d = sealJobData(j.id, j.data);
        if (d.invoiceNumber === 'F-000003') throw new UnrecoverableError('refused for the test');
        // As the seal worker does before its job completes (and leaves Redis): the sealed index entry.
        const file = path.join(job.outboxRoot, d.tenant, d.runDate, `${d.invoiceNumber}.pdf`);
        await recordSealed(job.outboxRoot, d.tenant, d.invoiceNumber, d.sourceSha256, file, d.runId);
        return 'ok';
      },
      { connection, prefix, concurrency: 5 },
    );
    after(() => worker.close());
    const count = () => {
      if (++settled === 5) allSettled();
    };
    worker.on('completed', count);
    worker.on('failed', count);
    await settledAll;
    // No worker while the re-run looks: the re-queued job must stay waiting to be seen.
    await worker.close();
    assert.equal(await queue.getFailedCount(), 1);

    // A refused factor stopped the credential; ops' retry (the re-run) releases it for every worker.
    const guards = new RedisAuthorisationGuards({ redis: opts.redis, prefix });
    const ref = {
      providerUrl: 'https://provider.example/csc/v2',
      tenant: job.tenant,
      credentialId: job.signing.credentialId,
    };
    await guards
      .for(ref)
      .latch({ reason: 'HTTP 400 invalid_pin: The PIN is invalid', status: 400, at: Date.now() });
    assert.equal((await listCredentialLatches(opts.redis, prefix)).length, 1);

    await fs.rename(first.files[0]!.processedTo!, path.join(inbox, 'invoices.csv'));
    const again = await produceRun(job, { ...opts, chunkSize: 2 });
    // The four completed jobs left Redis; the sealed index knows them, so none is queued again.
    assert.deepEqual(again.totals, { rows: 5, enqueued: 1, duplicates: 0, alreadySealed: 4, rejected: 0 });
    const run = await readRun(opts.redis, prefix, again.runId);
    assert.equal(run.alreadySealed, 4);
    assert.equal(run.enqueued, 5, 'the run took on all five: four settled as already sealed, one queued');
    assert.equal(again.files[0]!.requeued, 1);
    assert.deepEqual(await listCredentialLatches(opts.redis, prefix), [], 'the re-run cleared the latch');
    assert.equal(await queue.getFailedCount(), 0);
    const waiting = await queue.getJobs(['waiting']);
    assert.deepEqual(
      waiting.map((j) => j.data.invoiceNumber),
      ['F-000003'],
    );
  },
);

test(
  'two producers of one export at once both succeed with exact counts; the jobs are queued once',
  TIMEOUT,
  async () => {
    const { inbox, job, queue, opts, redis, prefix } = await setup();
    await writeSampleExport({
      dir: inbox,
      tenantName: 'Acme',
      invoicePrefix: 'P',
      count: 40,
      encoding: 'utf8',
    });
    const now = new Date();
    const [a, b] = await Promise.all([
      produceRun(job, { ...opts, chunkSize: 3, now }),
      produceRun(job, { ...opts, chunkSize: 3, now: new Date(now.getTime() + 1) }),
    ]);
    for (const r of [a, b]) {
      assert.deepEqual(r.failedFiles, []);
      assert.deepEqual(r.notReady, []);
      assert.equal(r.totals.rows, 40);
      assert.equal(r.totals.enqueued + r.totals.duplicates, 40);
      const run = await readRun(redis, prefix, r.runId);
      assert.equal(run.rows, 40);
      assert.equal(run.enqueued, r.totals.enqueued);
      assert.equal(run.duplicates, r.totals.duplicates);
    }
    assert.equal(a.totals.enqueued + b.totals.enqueued, 40, 'each job counted as enqueued by exactly one');
    assert.equal(await queue.count(), 40);
    const moved = [a, b].map((r) =>
      r.files[0]!.processedTo ? 'moved' : r.files[0]!.movedByAnotherProducer ? 'by-other' : '?',
    );
    assert.deepEqual(moved.sort(), ['by-other', 'moved']);
    assert.deepEqual(await inboxFiles(inbox), ['pdf', 'processed']);
  },
);
