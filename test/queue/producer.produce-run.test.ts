import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { loadJobFile } from '../../src/jobs';
import { openSealQueue, produceRun, readRun, Scheduler, sealJobId, type SealJobData } from '../../src/queue';
import { writeExportCsv } from '../../src/export';
import { writeSampleExport, SAMPLE_COLUMNS } from '../../src/demo/sample-exports';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';

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
  return { dir, job, queue, ...t };
}

test('one job per invoice with deterministic IDs and references only; the export moves to processed/', async () => {
  const { dir, job, queue, redis, prefix } = await setup(30);
  const result = await produceRun(job, { queue, redis, prefix, logger, chunkSize: 7 });
  assert.deepEqual(result.totals, { rows: 30, enqueued: 30, duplicates: 0, rejected: 0 });
  assert.equal(await queue.count(), 30);
  const jobs = await queue.getJobs(['waiting']);
  const one = jobs.find((j) => j.data.invoiceNumber === 'ACM-000001')!;
  assert.equal(one.id, sealJobId(one.data));
  assert.match(one.id!, /^acme\|ACM-000001\|[0-9a-f]{64}$/);
  const data: SealJobData = one.data;
  assert.equal(data.sourcePath, path.join(dir, 'inbox', 'pdf', 'ACM-000001.pdf'));
  assert.ok(JSON.stringify(data).length < 1000, 'job data holds references, not PDF bytes');
  assert.deepEqual(await fs.readdir(path.join(dir, 'inbox')), ['pdf', 'processed']);
  const counts = await readRun(redis, prefix, result.runId);
  assert.equal(counts.enqueued, 30);
  assert.equal(counts.rows, 30);

  // The same export again enqueues nothing and says so.
  await fs.rename(result.files[0]!.processedTo!, path.join(dir, 'inbox', 'invoices.csv'));
  const again = await produceRun(job, { queue, redis, prefix, logger });
  assert.deepEqual(again.totals, { rows: 30, enqueued: 0, duplicates: 30, rejected: 0 });
  assert.equal(await queue.count(), 30);
});

test('a file that fails (missing column) stays in place and does not stop the other exports', async () => {
  const { dir, job, queue, redis, prefix } = await setup(5);
  await writeExportCsv(
    path.join(dir, 'inbox', 'broken.csv'),
    ['請求書番号', '取引先名'],
    [['X-1', '株式会社テスト']],
    'utf8',
  );
  const result = await produceRun(job, { queue, redis, prefix, logger });
  assert.equal(result.totals.enqueued, 5);
  assert.equal(result.failedFiles.length, 1);
  assert.match(result.failedFiles[0]!.error, /broken\.csv/);
  assert.match(result.failedFiles[0]!.error, /請求金額/);
  await fs.access(path.join(dir, 'inbox', 'broken.csv'));
});

test('a scheduler trigger that fires while the job is still producing does not start a second run', async () => {
  const { job, queue, redis, prefix } = await setup(40);
  const scheduler = new Scheduler({ jobs: [job], queue, redis, prefix, logger });
  const [first, second] = await Promise.all([scheduler.trigger(job), scheduler.trigger(job)]);
  assert.notEqual(first, 'skipped');
  assert.equal(second, 'skipped');
  // Another scheduler process holding the Redis lock blocks this one too.
  await redis.set(`${prefix}:producing:${job.name}`, 'other-process', 'PX', 10_000);
  assert.equal(await scheduler.trigger(job), 'skipped');
  await redis.del(`${prefix}:producing:${job.name}`);
  assert.equal(await queue.count(), 40);
});
