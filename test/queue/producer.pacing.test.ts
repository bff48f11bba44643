// A large export is read at the pace the workers take jobs: the producer waits while a tenant's queue
// holds maxQueued jobs ready to run, so Redis holds a window of the night, not all of it; delayed jobs
// and other tenants' queues do not hold it back.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Worker } from 'bullmq';
import pino from 'pino';
import { loadJobFile } from '../../src/jobs';
import { openSealQueue, produceRun } from '../../src/queue';
import { writeSampleExport, SAMPLE_COLUMNS } from '../../src/demo/sample-exports';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const logger = pino({ level: 'silent' });

async function setup(count: number) {
  const dir = await tempDir();
  const t = await testRedis();
  await writeSampleExport({
    dir: path.join(dir, 'inbox'),
    tenantName: 'Acme K.K.',
    invoicePrefix: 'ACM',
    count,
    encoding: 'utf8',
  });
  const jobFile = path.join(dir, 'acme.json');
  await fs.writeFile(
    jobFile,
    JSON.stringify({
      name: 'acme-nightly',
      cron: '0 2 * * *',
      tenant: 'acme',
      export: { folder: 'inbox', columns: SAMPLE_COLUMNS },
      signing: { clientId: 'acme-app', clientSecret: 'env:NOPE', credentialId: 'acme-cred', batchSize: 10 },
      outbox: 'outbox',
    }),
  );
  const job = await loadJobFile(jobFile);
  const queue = openSealQueue(t.connection, t.prefix);
  after(() => queue.close());
  return { job, queue, ...t };
}

test(
  'reading waits while the queue is full and goes on as a worker takes jobs; every row is queued once',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { job, queue, redis, prefix, connection } = await setup(25);
    const paused: number[] = [];
    const produced = produceRun(job, {
      queue,
      redis,
      prefix,
      logger,
      chunkSize: 3,
      maxQueued: 6,
      pacePollMs: 20,
      onPaused: (p) => paused.push(p.queued),
    });
    let done = false;
    void produced.then(() => (done = true)).catch(() => undefined);
    const tenantQueue = queue.forTenant('acme');
    // No worker yet: the producer stops at the cap (6 ready, a chunk of 3 does not fit) and stays there.
    while (paused.length < 3) await new Promise((r) => setTimeout(r, 10));
    assert.equal(done, false, 'the producer waits while the queue is full');
    assert.equal(await tenantQueue.getWaitingCount(), 6);
    assert.ok(
      paused.every((q) => q === 6),
      `it never queued past the cap: ${paused.join(',')}`,
    );

    // A worker takes jobs (completing them without sealing: this test is about the queue's pace).
    let most = 0;
    const worker = new Worker(
      tenantQueue.name,
      async () => {
        most = Math.max(most, await tenantQueue.getWaitingCount());
      },
      { connection, prefix, concurrency: 1 },
    );
    after(() => worker.close());
    const result = await produced;
    assert.deepEqual(result.totals, { rows: 25, enqueued: 25, duplicates: 0, alreadySealed: 0, rejected: 0 });
    assert.ok(most <= 6, `the queue never held more than maxQueued ready jobs (most seen: ${most})`);
    await worker.close();
  },
);

test('maxQueued 0 never waits', { timeout: TEST_TIMEOUT_MS }, async () => {
  const { job, queue, redis, prefix } = await setup(12);
  const result = await produceRun(job, { queue, redis, prefix, logger, chunkSize: 2, maxQueued: 0 });
  assert.equal(result.totals.enqueued, 12);
  assert.equal(await queue.forTenant('acme').getWaitingCount(), 12);
});
