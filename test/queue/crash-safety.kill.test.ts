// kill -9 at random moments loses nothing and duplicates nothing. Two `sealer work` processes seal a
// few hundred invoices; one of them is killed 20 times at random points (preparing, with a signHash
// call in flight, between writing a sealed file and completing its job) and started again. Then every
// invoice must be sealed exactly once: one valid PDF, one manifest row, one index entry, one seal entry
// in a verifying audit chain, no refusal, no temp file, and run counts that equal the invoices.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { loadJobs } from '../../src/jobs';
import { openSealQueue, produceRun, readRun } from '../../src/queue';
import { assertSealedExactlyOnce } from '../helpers/outbox-invariants';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { spawnWorker, until, type WorkerProcess } from '../helpers/worker-process';
import { startTestSandbox, writeImplicitSakuraJob, writeTenantExport } from '../helpers/night-fixture';

const INVOICES = 360;
const KILLS = 20;

test(
  '20 kill -9 of one of two workers during a night: every invoice sealed exactly once',
  { timeout: 600_000 },
  async (t) => {
    const dir = await tempDir();
    const { redis, prefix, connection, url } = await testRedis();
    // Each signHash takes 300 ms, so the night lasts long enough for 20 kills on a fast machine too.
    const sandbox = await startTestSandbox(dir, { faults: 'signHash:latency:300ms' });
    await writeTenantExport(path.join(dir, 'inbox', 'sakura'), 'sakura', INVOICES);
    const jobsDir = path.join(dir, 'jobs');
    await writeImplicitSakuraJob(dir, jobsDir, sandbox, { batchSize: 8 });
    const [job] = await loadJobs(jobsDir);
    const queue = openSealQueue(connection, prefix, {
      attempts: 6,
      backoff: { type: 'fixed', delay: 200 },
      removeOnComplete: false,
      removeOnFail: false,
    });
    t.after(() => queue.close());
    const produced = await produceRun(job!, { queue, redis, prefix, logger: pino({ level: 'silent' }) });
    assert.equal(produced.totals.enqueued, INVOICES);
    const runId = produced.runId;

    const logs = path.join(dir, 'logs');
    await fs.mkdir(logs);
    let started = 0;
    // Short locks and frequent stalled checks, so a killed worker's jobs come back within seconds.
    const start = (concurrency = 16, awaitingSignature?: number) =>
      spawnWorker({
        jobsDir,
        redisUrl: url,
        prefix,
        logFile: path.join(logs, `worker-${started++}.log`),
        args: [
          '--concurrency',
          String(concurrency),
          ...(awaitingSignature === undefined ? [] : ['--awaiting-signature', String(awaitingSignature)]),
          '--threads',
          '1',
          '--lock-duration',
          '10000',
          '--stalled-interval',
          '2000',
        ],
      });
    // First, a power cut at the worst moment: both workers killed the instant a sealed file appears,
    // i.e. between the outbox write and the manifest row, audit entry, index entry and job completion.
    const outDir = path.join(dir, 'outbox', 'sakura', produced.runDate);
    await fs.mkdir(outDir, { recursive: true });
    let first = [await start(), await start()];
    await new Promise<void>((resolve) => {
      const watcher = fsSync.watch(outDir, (_event, name) => {
        if (!name?.endsWith('.pdf')) return;
        watcher.close();
        for (const w of first) w.child.kill('SIGKILL');
        resolve();
      });
    });
    await Promise.all(first.map((w) => w.exited));
    first = [];
    // The steady worker takes one invoice at a time (about two a second; none waits for its signature
    // beside it), so that however long the victim takes to start again, most of the night is still
    // ahead when the 20th kill comes. The victim lends its slots to a batch's worth (8) beside its 16:
    // some of its jobs die waiting for their signatures, and its nights stay short (at the default of
    // 128 beside them it sealed the night before the 20th kill).
    const steady = await start(1, 0);
    let victim: WorkerProcess = await start(16, 8);
    const done = async () => {
      const c = await readRun(redis, prefix, runId);
      return c.sealed + c.alreadySealed + c.failed;
    };

    // Kill the victim after a random amount of progress each time: its jobs are then mid-prepare, in a
    // signHash call, or between the outbox write and the job's completion.
    let kills = 0;
    let settledAtLastKill = 0;
    while (kills < KILLS) {
      const before = await done();
      if (before >= INVOICES) break;
      const step = 1 + Math.floor(Math.random() * 3);
      await until(
        `progress past ${before + step}`,
        120_000,
        async () => (await done()) >= Math.min(INVOICES, before + step),
      );
      // A random moment within a batch's life (the batch signer waits up to 200 ms for a batch to fill).
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 300)));
      victim.child.kill('SIGKILL');
      await victim.exited;
      kills++;
      settledAtLastKill = await done();
      victim = await start(16, 8);
    }
    await until(
      'the run to settle',
      300_000,
      async () => (await readRun(redis, prefix, runId)).settledAt !== undefined,
    );
    for (const w of [steady, victim]) w.child.kill('SIGTERM');
    await Promise.all([steady.exited, victim.exited]);

    const counts = await readRun(redis, prefix, runId);
    const jobs = await queue.getJobs(['completed', 'failed']);
    const retries = jobs.reduce((n, j) => n + Math.max(0, j.attemptsMade - 1), 0);
    const stalls = jobs.reduce((n, j) => n + (j.stalledCounter ?? 0), 0);
    // Where the kills landed, as the workers' logs tell: deliveries completed after a crash between
    // the outbox write and the job's completion, and signatures spent on invoices sealed again.
    let repaired = 0;
    for (const f of await fs.readdir(logs)) {
      const text = await fs.readFile(path.join(logs, f), 'utf8');
      repaired += (text.match(/interrupted delivery completed/g) ?? []).length;
    }
    assert.equal(kills, KILLS, 'the victim was killed 20 times before the night ended');
    assert.ok(repaired >= 1, 'the power cut left a delivery to complete');
    assert.equal(counts.failed, 0, 'no invoice failed');
    assert.equal(counts.sealed + counts.alreadySealed, INVOICES, 'the counts equal the invoices');
    assert.equal(counts.enqueued, INVOICES);
    const figures = await assertSealedExactlyOnce(
      path.join(dir, 'outbox'),
      'sakura',
      produced.runDate,
      INVOICES,
    );
    t.diagnostic(
      `kill test: ${JSON.stringify({ powerCut: 1, kills, settledAtLastKill, workerStarts: started, invoices: INVOICES, sealed: counts.sealed, alreadySealed: counts.alreadySealed, failed: counts.failed, ...figures, retries, stalls, repaired, signaturesSpent: sandbox.stats().signatures })}`,
    );
  },
);
