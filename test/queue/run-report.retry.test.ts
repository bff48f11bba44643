// A run re-opened by `sealer retry` and settled again gets its report rewritten as the run now
// stands: an invoice retried and sealed turns from failed to sealed; one sealed since by a re-run of
// the export turns to already sealed, naming the file the re-run wrote. Real Redis and the sandbox.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { createLogger } from '../../src/common/logger';
import { loadJobs } from '../../src/jobs';
import {
  openSealQueue,
  produceRun,
  readFailures,
  readRun,
  reportUnreportedRuns,
  retryJobs,
  runSettled,
  SealWorker,
} from '../../src/queue';
import { readRunReportCsv, type RunReportSummary } from '../../src/outbox';
import { startTestSandbox, writeImplicitSakuraJob, writeTenantExport } from '../helpers/night-fixture';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

/** Reads summary.json once it exists and `ready` says it is the one awaited. */
async function summaryWhen(file: string, ready: (s: RunReportSummary) => boolean): Promise<RunReportSummary> {
  for (;;) {
    const text = await fs.readFile(file, 'utf8').catch(() => undefined);
    if (text !== undefined) {
      const s = JSON.parse(text) as RunReportSummary;
      if (ready(s)) return s;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

test(
  'a run settled again after sealer retry has its report rewritten: failed → sealed, and sealed since → already sealed',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { redis, prefix, connection } = await testRedis();
    const sandbox = await startTestSandbox(dir);
    const jobsDir = path.join(dir, 'jobs');
    await writeImplicitSakuraJob(dir, jobsDir, sandbox);
    const jobs = await loadJobs(jobsDir);
    const inbox = path.join(dir, 'inbox', 'sakura');
    await writeTenantExport(inbox, 'sakura', 4);
    const logger = createLogger({
      level: 'debug',
      destination: pino.destination({ dest: path.join(dir, 'night.log'), sync: true }),
    });
    const queue = openSealQueue(connection, prefix);
    after(() => queue.close());
    const work = async (runIds: string[]) => {
      const worker = new SealWorker({ connection, redis, prefix, jobs, logger, concurrency: 8, threads: 1 });
      const running = worker.run();
      try {
        for (;;) {
          const counts = await Promise.all(runIds.map((id) => readRun(redis, prefix, id)));
          if (counts.every(runSettled)) break;
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        await worker.close();
        await running;
      }
    };

    // Enqueued with every PDF; two go missing before a worker reads them, and fail.
    const pdfDir = path.join(inbox, 'pdf');
    const produced = await produceRun(jobs[0]!, { queue, redis, prefix, logger });
    const runId = produced.runId;
    for (const inv of ['SKR-000003', 'SKR-000004'])
      await fs.rename(path.join(pdfDir, `${inv}.pdf`), path.join(dir, `${inv}.pdf`));
    await work([runId]);
    const reportDir = path.join(dir, 'outbox', 'sakura', produced.runDate, 'runs', runId);
    const summaryFile = path.join(reportDir, 'summary.json');
    const first = await summaryWhen(summaryFile, () => true);
    assert.deepEqual(first.listed, { sealed: 2, alreadySealed: 0, failed: 2, rejects: 0 });
    const before = await readRunReportCsv(path.join(reportDir, 'manifest.csv'));
    assert.deepEqual(
      before.map((r) => [r.invoiceNumber, r.status]),
      [
        ['SKR-000001', 'sealed'],
        ['SKR-000002', 'sealed'],
        ['SKR-000003', 'failed'],
        ['SKR-000004', 'failed'],
      ],
    );
    assert.equal(before[2]!.failureKind, 'unsealable');

    // The PDFs are back: SKR-000004 is retried by its job ID and sealed; the run settles again.
    for (const inv of ['SKR-000003', 'SKR-000004'])
      await fs.rename(path.join(dir, `${inv}.pdf`), path.join(pdfDir, `${inv}.pdf`));
    const failures = await readFailures(redis, prefix, runId);
    const job4 = failures.find((f) => f.invoice === 'SKR-000004')!.jobId!;
    const retried = await retryJobs({ redis, prefix, queue, jobs, logger }, { jobIds: [job4] });
    assert.equal(retried.requeued.length, 1);
    await work([runId]);
    const second = await summaryWhen(summaryFile, (s) => s.listed.failed === 1);
    assert.deepEqual(second.listed, { sealed: 3, alreadySealed: 0, failed: 1, rejects: 0 });
    const record = await readRun(redis, prefix, runId);
    assert.equal(second.counts.sealed, record.sealed);
    assert.equal(second.counts.failed, record.failed);
    assert.equal(second.endedAt.utc, record.settledAt);
    const middle = await readRunReportCsv(path.join(reportDir, 'manifest.csv'));
    assert.equal(middle.length, 4);
    assert.equal(middle[3]!.status, 'sealed');
    assert.equal(middle[3]!.file, `${produced.runDate}/SKR-000004.pdf`);
    assert.equal(middle[3]!.failureReason, '');

    // A re-run of the export (a new run, a day later) seals SKR-000003; `retry --run` then finds it
    // sealed since: the first run counts it as already sealed and its report says so.
    await fs.rename(produced.files[0]!.processedTo!, produced.files[0]!.file);
    const rerun = await produceRun(jobs[0]!, {
      queue,
      redis,
      prefix,
      logger,
      now: new Date(Date.now() + 86_400_000),
    });
    assert.equal(rerun.totals.enqueued, 1);
    // The other three completed and left Redis: the sealed index names them, none is queued again.
    assert.equal(rerun.totals.alreadySealed, 3);
    assert.equal(rerun.totals.duplicates, 0);
    await work([rerun.runId]);
    const sealedSince = await retryJobs({ redis, prefix, queue, jobs, logger }, { runId });
    assert.equal(sealedSince.alreadySealed.length, 1);
    const third = await summaryWhen(summaryFile, (s) => s.listed.failed === 0);
    assert.deepEqual(third.listed, { sealed: 3, alreadySealed: 1, failed: 0, rejects: 0 });
    const after3 = await readRunReportCsv(path.join(reportDir, 'manifest.csv'));
    assert.equal(after3[2]!.invoiceNumber, 'SKR-000003');
    assert.equal(after3[2]!.status, 'already sealed');
    assert.equal(after3[2]!.file, `${rerun.runDate}/SKR-000003.pdf`);
    assert.equal(after3[2]!.sealedByRun, rerun.runId);
    assert.ok(after3[2]!.sealedAtJst);
    await fs.access(path.join(dir, 'outbox', 'sakura', after3[2]!.file!));
    assert.deepEqual((await fs.readdir(reportDir)).sort(), ['manifest.csv', 'rejects.csv', 'summary.json']);
    // The re-run has its own report, in its own date folder: what it sealed, and what it found sealed.
    const rerunSummary = await summaryWhen(
      path.join(dir, 'outbox', 'sakura', rerun.runDate, 'runs', rerun.runId, 'summary.json'),
      () => true,
    );
    assert.deepEqual(rerunSummary.listed, { sealed: 1, alreadySealed: 3, failed: 0, rejects: 0 });
  },
);

test(
  'a run whose settling process died before its report gets the report from the next worker that starts',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { redis, prefix, connection } = await testRedis();
    const sandbox = await startTestSandbox(dir);
    const jobsDir = path.join(dir, 'jobs');
    await writeImplicitSakuraJob(dir, jobsDir, sandbox);
    const jobs = await loadJobs(jobsDir);
    await writeTenantExport(path.join(dir, 'inbox', 'sakura'), 'sakura', 3);
    const logger = createLogger({
      level: 'debug',
      destination: pino.destination({ dest: path.join(dir, 'night.log'), sync: true }),
    });
    const queue = openSealQueue(connection, prefix);
    after(() => queue.close());
    const produced = await produceRun(jobs[0]!, { queue, redis, prefix, logger });
    const runWorker = async (until: () => Promise<boolean>) => {
      const worker = new SealWorker({ connection, redis, prefix, jobs, logger, concurrency: 8, threads: 1 });
      const running = worker.run();
      try {
        while (!(await until())) await new Promise((r) => setTimeout(r, 50));
      } finally {
        await worker.close();
        await running;
      }
    };
    const reportDir = path.join(dir, 'outbox', 'sakura', produced.runDate, 'runs', produced.runId);
    const summaryFile = path.join(reportDir, 'summary.json');
    const exists = (f: string) =>
      fs.access(f).then(
        () => true,
        () => false,
      );
    await runWorker(() => exists(summaryFile));
    // What a crash right after settleRun leaves: the run settled, no report, nothing marking one written.
    await fs.rm(reportDir, { recursive: true });
    await redis.hdel(`${prefix}:run:${produced.runId}`, 'reportedFor');

    await runWorker(() => exists(summaryFile));
    const summary = await summaryWhen(summaryFile, () => true);
    assert.deepEqual(summary.listed, { sealed: 3, alreadySealed: 0, failed: 0, rejects: 0 });
    assert.equal(summary.endedAt.utc, (await readRun(redis, prefix, produced.runId)).settledAt);
    // Reported now: the next start leaves it alone.
    assert.deepEqual(await reportUnreportedRuns({ redis, prefix, logger, jobs }), []);
    await fs.rm(reportDir, { recursive: true });
    await redis.hdel(`${prefix}:run:${produced.runId}`, 'reportedFor');
    assert.deepEqual(await reportUnreportedRuns({ redis, prefix, logger, jobs }), [produced.runId]);
    // ... and a run settled longer ago than the window is left alone.
    await fs.rm(reportDir, { recursive: true });
    await redis.hdel(`${prefix}:run:${produced.runId}`, 'reportedFor');
    const later = new Date(Date.now() + 8 * 86_400_000);
    assert.deepEqual(await reportUnreportedRuns({ redis, prefix, logger, jobs, now: later }), []);
    assert.equal(await exists(summaryFile), false);
  },
);
