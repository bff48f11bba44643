// Redis holds what a night needs, not a history: after a night against real Redis and the sandbox, no
// completed job is left in Redis (hash, completed set), only the failed one ops may retry; `runs`,
// `run`, `failed`, `retry` and a re-run of the same export still answer exactly, from the run record
// and the outbox's sealed index: the re-run enqueues nothing and counts every invoice as already sealed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import type { Redis } from 'ioredis';
import { createLogger } from '../../src/common/logger';
import { loadJobs } from '../../src/jobs';
import {
  listFailed,
  listRunSummaries,
  openSealQueues,
  produceRun,
  readRun,
  readRunDetail,
  retryJobs,
  runKey,
  runSettled,
  SealWorker,
  sealJobId,
} from '../../src/queue';
import { readManifest, readRunReportCsv, type RunReportSummary } from '../../src/outbox';
import { startTestSandbox, writeImplicitSakuraJob, writeTenantExport } from '../helpers/night-fixture';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

/** Every key under the prefix. */
async function keysOf(redis: Redis, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  return out.sort();
}

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
  'after a night no completed job is left in Redis, and runs, failed, retry and a re-run of the export still answer exactly',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { redis, prefix, connection } = await testRedis();
    const sandbox = await startTestSandbox(dir);
    const jobsDir = path.join(dir, 'jobs');
    await writeImplicitSakuraJob(dir, jobsDir, sandbox);
    const jobs = await loadJobs(jobsDir);
    const job = jobs[0]!;
    const inbox = path.join(dir, 'inbox', 'sakura');
    await writeTenantExport(inbox, 'sakura', 6);
    const logger = createLogger({
      level: 'debug',
      destination: pino.destination({ dest: path.join(dir, 'night.log'), sync: true }),
    });
    // The product's own job options: nothing here keeps completed jobs.
    const queues = openSealQueues(connection, prefix);
    after(() => queues.close());
    const queue = queues.forTenant('sakura');
    const work = async (runIds: string[]) => {
      const worker = new SealWorker({ connection, redis, prefix, jobs, logger, concurrency: 8, threads: 1 });
      const running = worker.run();
      try {
        for (;;) {
          const counts = await Promise.all(runIds.map((id) => readRun(redis, prefix, id)));
          if (counts.every((c) => runSettled(c) && c.settledAt !== undefined)) break;
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        await worker.close();
        await running;
      }
    };

    // The night: SKR-000004's PDF goes missing after it was enqueued, so it fails; five seal.
    const pdfDir = path.join(inbox, 'pdf');
    const produced = await produceRun(job, { queue: queues, redis, prefix, logger });
    const runId = produced.runId;
    assert.equal(produced.totals.enqueued, 6);
    await fs.rename(path.join(pdfDir, 'SKR-000004.pdf'), path.join(dir, 'SKR-000004.pdf'));
    await work([runId]);

    const manifest = await readManifest(
      path.join(job.outboxRoot, 'sakura', produced.runDate, 'manifest.csv'),
    );
    assert.equal(manifest.length, 5);
    const idOf = (invoice: string) =>
      sealJobId({
        tenant: 'sakura',
        invoiceNumber: invoice,
        sourceSha256: manifest.find((r) => r.invoiceNumber === invoice)!.sourceSha256,
      });
    // No completed job in Redis: not one job hash of a sealed invoice, no completed set.
    assert.equal((await queue.getJobCounts('completed')).completed, 0);
    assert.equal(await redis.exists(queue.toKey('completed')), 0);
    for (const row of manifest) {
      const id = idOf(row.invoiceNumber);
      assert.equal(await queue.getJob(id), undefined, `${row.invoiceNumber} left Redis once completed`);
      assert.equal(await redis.exists(queue.toKey(id)), 0);
    }
    const jobHashes = (await keysOf(redis, prefix)).filter((k) => k.includes('|'));
    assert.equal(jobHashes.length, 1, `only the failed job is kept: ${jobHashes.join(', ')}`);
    const [failedJob] = await queues.getJobs(['failed']);
    assert.equal(failedJob?.data.invoiceNumber, 'SKR-000004');
    // The run record keeps one small outcome per invoice, no settled set, facts only for the failed one.
    const key = runKey(prefix, runId);
    assert.equal(await redis.hlen(`${key}:outcomes`), 6);
    assert.equal(await redis.exists(`${key}:settled`), 0);
    assert.deepEqual(await redis.hkeys(`${key}:invoices`), [failedJob!.id]);

    // What ops read: runs, run <id>, failed.
    const [summary] = await listRunSummaries(redis, prefix, { tenant: 'sakura' });
    assert.equal(summary?.runId, runId);
    assert.equal(summary?.state, 'settled');
    assert.deepEqual(summary?.counts, {
      queued: 6,
      sealed: 5,
      alreadySealed: 0,
      failed: 1,
      rejected: 0,
      duplicates: 0,
      rows: 6,
      awaitingApproval: 0,
      pending: 0,
    });
    const failed = await listFailed(redis, prefix, { tenant: 'sakura' });
    assert.deepEqual(
      failed.map((f) => [f.invoice, f.kind, f.jobId, f.line, f.exportFile]),
      [['SKR-000004', 'unsealable', failedJob!.id, 5, produced.files[0]!.file]],
    );
    // The run report still gives finance every invoice with its facts: the sealed ones' from the
    // manifest, the failed one's from the run record.
    const reportDir = path.join(job.outboxRoot, 'sakura', produced.runDate, 'runs', runId);
    const first = await summaryWhen(path.join(reportDir, 'summary.json'), () => true);
    assert.deepEqual(first.listed, { sealed: 5, alreadySealed: 0, failed: 1, rejects: 0 });
    const rows = await readRunReportCsv(path.join(reportDir, 'manifest.csv'));
    for (const r of rows) {
      const sealedRow = manifest.find((m) => m.invoiceNumber === r.invoiceNumber);
      assert.ok(r.customer, `${r.invoiceNumber} has its customer`);
      assert.ok(r.amount, `${r.invoiceNumber} has its amount`);
      assert.equal(r.exportFile, 'invoices.csv');
      assert.equal(r.line, String(Number(r.invoiceNumber!.slice(4)) + 1));
      if (sealedRow) {
        assert.equal(r.status, 'sealed');
        assert.equal(r.customer, sealedRow.customer);
        assert.equal(r.amount, sealedRow.amount);
        assert.equal(r.sealedSha256, sealedRow.sealedSha256);
        assert.equal(r.file, `${produced.runDate}/${r.invoiceNumber}.pdf`);
      } else {
        assert.equal(r.status, 'failed');
        assert.equal(r.customer, failedJob!.data.customer);
      }
    }

    // retry: a sealed invoice's job is gone, yet it is reported as already sealed, not unknown; the
    // failed one is queued again and seals.
    const sealedOne = await retryJobs(
      { redis, prefix, queue: queues, jobs, logger },
      { jobIds: [idOf('SKR-000001')] },
    );
    assert.deepEqual(
      sealedOne.alreadySealed.map((r) => r.invoice),
      ['SKR-000001'],
    );
    assert.deepEqual([sealedOne.requeued, sealedOne.notFailed, sealedOne.unknown], [[], [], []]);
    await fs.rename(path.join(dir, 'SKR-000004.pdf'), path.join(pdfDir, 'SKR-000004.pdf'));
    const retried = await retryJobs({ redis, prefix, queue: queues, jobs, logger }, { runId });
    assert.deepEqual(
      retried.requeued.map((r) => r.invoice),
      ['SKR-000004'],
    );
    await work([runId]);
    assert.deepEqual(
      { ...(await readRunDetail(redis, prefix, runId))!.counts },
      { ...summary!.counts, sealed: 6, failed: 0 },
    );
    assert.deepEqual(await listFailed(redis, prefix, { runId }), []);
    const again = await retryJobs({ redis, prefix, queue: queues, jobs, logger }, { runId });
    assert.deepEqual([again.requeued, again.alreadySealed, again.notFailed, again.unknown], [[], [], [], []]);
    assert.equal(
      (await keysOf(redis, prefix)).filter((k) => k.includes('|')).length,
      0,
      'no job left at all',
    );

    // A re-run of the same export: nothing queued, all six counted (and reported) as already sealed.
    await fs.rename(produced.files[0]!.processedTo!, produced.files[0]!.file);
    const rerun = await produceRun(job, {
      queue: queues,
      redis,
      prefix,
      logger,
      now: new Date(Date.now() + 86_400_000),
    });
    assert.deepEqual(rerun.totals, { rows: 6, enqueued: 0, duplicates: 0, alreadySealed: 6, rejected: 0 });
    assert.equal(await queues.count(), 0);
    const rerunRun = await readRunDetail(redis, prefix, rerun.runId);
    assert.equal(rerunRun?.state, 'settled');
    assert.deepEqual(rerunRun?.counts, {
      queued: 6,
      sealed: 0,
      alreadySealed: 6,
      failed: 0,
      rejected: 0,
      duplicates: 0,
      rows: 6,
      awaitingApproval: 0,
      pending: 0,
    });
    const rerunDir = path.join(job.outboxRoot, 'sakura', rerun.runDate, 'runs', rerun.runId);
    const rerunSummary = await summaryWhen(path.join(rerunDir, 'summary.json'), () => true);
    assert.deepEqual(rerunSummary.listed, { sealed: 0, alreadySealed: 6, failed: 0, rejects: 0 });
    for (const r of await readRunReportCsv(path.join(rerunDir, 'manifest.csv'))) {
      assert.equal(r.status, 'already sealed');
      assert.equal(r.sealedByRun, runId);
      assert.equal(r.file, `${produced.runDate}/${r.invoiceNumber}.pdf`);
      assert.ok(r.customer);
    }
    // Nothing was sealed twice: one manifest row per invoice, the sandbox signed six hashes.
    const after2 = await readManifest(path.join(job.outboxRoot, 'sakura', produced.runDate, 'manifest.csv'));
    assert.equal(after2.length, 6);
    assert.equal(sandbox.stats().signatures, 6);
  },
);
