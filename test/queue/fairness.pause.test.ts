// Per-tenant queues: a tenant with a huge queue does not starve a tenant with 100 (both progress, the
// small one finishes long before the big one could), and pausing one tenant stops its sealing while the
// other keeps sealing, until resume. Real Redis, sandbox and worker.
//
// How huge: the suite queues 20,000 (SEALER_FAIRNESS_BIG=500000 queues the half million; the
// test runner then runs this file alone). The property does not grow with the queue: a worker takes the
// next job of each tenant's queue in O(1) however long it is, and one FIFO queue would seal every one of
// the big tenant's jobs before the small tenant's first. The check below fails once the big tenant seals
// 20 x SMALL = 2,000 while the small one seals its 100, so any BIG well above that (here 10x) tells the
// two apart; half a million only made the fill (69 s of this file's 85 s alone) the suite's floor.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { loadJobs } from '../../src/jobs';
import {
  addRunCounts,
  openSealQueues,
  pauseSealing,
  pausedTenants,
  produceRun,
  readRun,
  resumeSealing,
  SealWorker,
  sealJobId,
  UnknownTenantError,
  type SealJobData,
} from '../../src/queue';
import { writeSampleExport } from '../../src/demo/sample-exports';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import {
  factorFileRefs,
  sandboxSecretsDir,
  startTestSandbox,
  writeImplicitSakuraJob,
  writeJobFile,
  writeTenantExport,
} from '../helpers/night-fixture';

const BIG = Number(process.env.SEALER_FAIRNESS_BIG ?? 20_000);
const SMALL = 100;
// Sealed by the big tenant while the small one seals all of its own, above which the small one waited.
const STARVED_AT = 20 * SMALL;

async function until(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test(
  `a tenant with ${BIG} invoices queued does not starve one with ${SMALL}; pause stops one tenant only`,
  { timeout: 600_000 },
  async (t) => {
    // Below this, one FIFO queue could seal the big tenant's whole queue under STARVED_AT and pass.
    assert.ok(BIG >= 10 * STARVED_AT, `SEALER_FAIRNESS_BIG=${BIG} is too small to tell starvation apart`);
    const dir = await tempDir();
    const { redis, prefix, connection } = await testRedis();
    const sandbox = await startTestSandbox(dir);
    const jobsDir = path.join(dir, 'jobs');
    await writeImplicitSakuraJob(dir, jobsDir, sandbox, { batchSize: 16 });
    const fujiSecrets = sandboxSecretsDir(dir, 'fuji');
    await writeJobFile(jobsDir, {
      tenant: 'fuji',
      credentialId: 'fuji-eseal-ec',
      providerUrl: sandbox.url,
      secretsDir: fujiSecrets,
      signing: { ...factorFileRefs(fujiSecrets, 'fuji-eseal-ec'), totp: { periodSec: 1 }, batchSize: 16 },
    });
    const jobs = await loadJobs(jobsDir);
    const fuji = jobs.find((j) => j.tenant === 'fuji')!;
    const queues = openSealQueues(connection, prefix);
    t.after(() => queues.close());

    // sakura's night: BIG invoices of one source PDF, queued the way the producer queues them.
    await writeTenantExport(path.join(dir, 'inbox', 'sakura'), 'sakura', 1);
    const source = path.join(dir, 'inbox', 'sakura', 'pdf', 'SKR-000001.pdf');
    const bytes = await fs.readFile(source);
    const bigRun = 'sakura-nightly-big';
    const base: Omit<SealJobData, 'invoiceNumber' | 'line'> = {
      tenant: 'sakura',
      jobName: 'sakura-nightly',
      runId: bigRun,
      runDate: '2026-12-01',
      sourcePath: source,
      sourceSha256: crypto.createHash('sha256').update(bytes).digest('hex'),
      sourceLength: bytes.length,
      exportFile: path.join(dir, 'inbox', 'sakura', 'big.csv'),
    };
    await addRunCounts(
      redis,
      prefix,
      bigRun,
      { rows: BIG },
      {
        job: 'sakura-nightly',
        tenant: 'sakura',
        startedAt: new Date().toISOString(),
        state: 'producing',
      },
    );
    const fillStarted = performance.now();
    // One chunk in Redis while the next is built here: the fill is most of this file's time, and
    // building (job IDs, JSON) and storing (Redis) then overlap instead of taking turns.
    let inFlight: Promise<unknown> = Promise.resolve();
    for (let at = 0; at < BIG; at += 5000) {
      const chunk = Array.from({ length: Math.min(5000, BIG - at) }, (_, i) => {
        const data = { ...base, invoiceNumber: `BIG-${String(at + i).padStart(7, '0')}`, line: at + i + 2 };
        return { name: data.jobName, data, opts: { jobId: sealJobId(data) } };
      });
      await inFlight;
      inFlight = queues.addBulk(chunk);
    }
    await inFlight;
    await addRunCounts(redis, prefix, bigRun, { enqueued: BIG }, { state: 'produced' });
    const fillSec = (performance.now() - fillStarted) / 1000;
    assert.equal(await queues.forTenant('sakura').count(), BIG);

    const logger = pino({ level: 'silent' });
    const worker = new SealWorker({
      connection,
      redis,
      prefix,
      jobs,
      logger,
      concurrency: 32,
      // sakura's worker holds 2,032 jobs, most of them waiting for a slot: were they served first
      // come, first served, fuji's would wait behind about 2,000 of them (STARVED_AT).
      awaitingSignature: 2000,
      threads: 2,
      batchMaxWaitMs: 20,
    });
    const running = worker.run();
    const sealedOf = async (runId: string) => (await readRun(redis, prefix, runId)).sealed;
    try {
      // fuji's night comes after, once sakura's is sealing: SMALL invoices behind sakura's whole
      // queue, were there one queue.
      await until('sakura seals', 120_000, async () => (await sealedOf(bigRun)) > 0);
      await writeTenantExport(path.join(dir, 'inbox', 'fuji'), 'fuji', SMALL);
      const fujiRun = await produceRun(fuji, { queue: queues, redis, prefix, logger });
      assert.equal(fujiRun.totals.enqueued, SMALL);
      const bigBefore = await sealedOf(bigRun);
      const started = performance.now();
      await until('fuji seals its invoices', 300_000, async () => (await sealedOf(fujiRun.runId)) === SMALL);
      const fujiSec = (performance.now() - started) / 1000;
      const bigMeanwhile = (await sealedOf(bigRun)) - bigBefore;
      // Both progressed: sakura sealed some while fuji sealed all of its 100, and fuji did not wait
      // behind sakura's queue (one FIFO queue would have sealed all of sakura's first).
      assert.ok(bigMeanwhile > 0, 'sakura sealed invoices meanwhile too');
      assert.ok(
        bigMeanwhile < STARVED_AT,
        `fuji waited behind sakura: sakura sealed ${bigMeanwhile} while fuji sealed ${SMALL}`,
      );
      t.diagnostic(
        `fairness: queued ${BIG} for sakura in ${fillSec.toFixed(1)} s; fuji sealed ${SMALL} in ` +
          `${fujiSec.toFixed(1)} s while sakura sealed ${bigMeanwhile}`,
      );

      // Pause sakura: fuji keeps sealing, sakura stops (its jobs in hand finish).
      const target = { redis, connection, prefix, tenants: jobs.map((j) => j.tenant) };
      assert.deepEqual(await pauseSealing(target, 'sakura'), ['sakura']);
      assert.deepEqual(await pauseSealing(target, 'sakura'), [], 'pausing again changes nothing');
      assert.deepEqual(await pausedTenants(target), ['sakura']);
      await assert.rejects(pauseSealing(target, 'sakur'), UnknownTenantError);
      await until('sakura has no job in hand', 120_000, async () => {
        return ((await queues.forTenant('sakura').getJobCounts('active')).active ?? 0) === 0;
      });
      const pausedAt = await sealedOf(bigRun);
      await writeSampleExport({
        dir: path.join(dir, 'inbox', 'fuji'),
        tenantName: 'Fuji Denki K.K.',
        invoicePrefix: 'FJP',
        count: 20,
        encoding: 'utf8',
        exportName: 'later.csv',
      });
      const fujiLater = await produceRun(fuji, {
        queue: queues,
        redis,
        prefix,
        logger,
        now: new Date(Date.now() + 1000),
      });
      assert.equal(fujiLater.totals.enqueued, 20);
      await until(
        'fuji seals while sakura is paused',
        120_000,
        async () => (await sealedOf(fujiLater.runId)) === 20,
      );
      assert.equal(await sealedOf(bigRun), pausedAt, 'sakura sealed nothing while paused');

      assert.deepEqual(await resumeSealing(target), ['sakura']);
      assert.deepEqual(await pausedTenants(target), []);
      await until(
        'sakura seals again after resume',
        120_000,
        async () => (await sealedOf(bigRun)) > pausedAt,
      );
    } finally {
      await worker.close();
      await running;
      // Half a million jobs: BullMQ removes them in batches, faster than deleting key by key.
      await queues.forTenant('sakura').obliterate({ force: true, count: 10_000 });
    }
  },
);
