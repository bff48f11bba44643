import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import pino from 'pino';
import { loadJobFile, type JobDefinition } from '../../src/jobs';
import {
  openSealQueue,
  produceRun,
  ProducerError,
  readRun,
  Scheduler,
  sealJobId,
  type ProduceResult,
  type SealJobData,
} from '../../src/queue';
import { writeExportCsv } from '../../src/export';
import { writeSampleExport, SAMPLE_COLUMNS } from '../../src/demo/sample-exports';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const logger = pino({ level: 'silent' });
const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');
const JOB_JSON = {
  name: 'acme-nightly',
  cron: '0 2 * * *',
  tenant: 'acme',
  export: { folder: 'inbox', columns: SAMPLE_COLUMNS },
  signing: { clientId: 'acme-app', clientSecret: 'env:NOPE', credentialId: 'acme-cred', batchSize: 10 },
  outbox: 'outbox',
};

async function setup(count: number) {
  const dir = await tempDir();
  const t = await testRedis();
  if (count > 0) {
    await writeSampleExport({
      dir: path.join(dir, 'inbox'),
      tenantName: 'Acme K.K.',
      invoicePrefix: 'ACM',
      count,
      encoding: 'utf8',
    });
  }
  const jobFile = path.join(dir, 'acme.json');
  await fs.writeFile(jobFile, JSON.stringify(JOB_JSON));
  const job = await loadJobFile(jobFile);
  const queue = openSealQueue(t.connection, t.prefix);
  after(() => queue.close());
  return { dir, job, queue, ...t };
}

test(
  'one job per invoice with deterministic IDs and references only; the export moves to processed/',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { dir, job, queue, redis, prefix } = await setup(30);
    const result = await produceRun(job, { queue, redis, prefix, logger, chunkSize: 7 });
    assert.deepEqual(result.totals, { rows: 30, enqueued: 30, duplicates: 0, alreadySealed: 0, rejected: 0 });
    assert.equal(await queue.count(), 30);
    const jobs = await queue.getJobs(['waiting']);
    const one = jobs.find((j) => j.data.invoiceNumber === 'ACM-000001')!;
    assert.equal(one.id, sealJobId(one.data));
    assert.match(one.id!, /^acme\|ACM-000001\|[0-9a-f]{64}$/);
    const data: SealJobData = one.data;
    assert.equal(data.sourcePath, path.join(dir, 'inbox', 'pdf', 'ACM-000001.pdf'));
    assert.ok(JSON.stringify(data).length < 1000, 'job data holds references, not PDF bytes');
    // Redis holds it less what the job ID says; the queue hands it back whole.
    const stored = JSON.parse((await redis.hget(queue.forTenant('acme').toKey(one.id!), 'data'))!) as object;
    assert.deepEqual(
      Object.keys(stored).filter((k) => ['tenant', 'invoiceNumber', 'sourceSha256'].includes(k)),
      [],
    );
    assert.deepEqual(
      { ...stored, tenant: 'acme', invoiceNumber: 'ACM-000001', sourceSha256: data.sourceSha256 },
      {
        ...data,
      },
    );
    assert.deepEqual(await fs.readdir(path.join(dir, 'inbox')), ['pdf', 'processed']);
    const counts = await readRun(redis, prefix, result.runId);
    assert.equal(counts.enqueued, 30);
    assert.equal(counts.rows, 30);

    // The same export again enqueues nothing and says so.
    await fs.rename(result.files[0]!.processedTo!, path.join(dir, 'inbox', 'invoices.csv'));
    const again = await produceRun(job, { queue, redis, prefix, logger });
    assert.deepEqual(again.totals, { rows: 30, enqueued: 0, duplicates: 30, alreadySealed: 0, rejected: 0 });
    assert.equal(await queue.count(), 30);
  },
);

test(
  'a file that fails (missing column) stays in place and does not stop the other exports',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
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
  },
);

test(
  'a scheduler trigger that fires while the job is still producing does not start a second run',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
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
  },
);

test(
  'a missing export folder is an error naming the folder and the job; an empty one is a quiet night',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { dir, job, queue, redis, prefix, url } = await setup(0);
    const missing = path.join(dir, 'no-such-inbox');
    const lost: JobDefinition = { ...job, exportFolder: missing };
    await assert.rejects(
      produceRun(lost, { queue, redis, prefix, logger }),
      (err: Error) =>
        err instanceof ProducerError &&
        err.message.includes(missing) &&
        err.message.includes('acme-nightly') &&
        /does not exist/.test(err.message),
    );
    // An existing but empty folder is a normal run of zero files.
    const empty = path.join(dir, 'empty-inbox');
    await fs.mkdir(empty);
    const quiet = await produceRun({ ...job, exportFolder: empty }, { queue, redis, prefix, logger });
    assert.deepEqual(quiet.files, []);
    assert.deepEqual(quiet.failedFiles, []);
    assert.deepEqual(quiet.totals, { rows: 0, enqueued: 0, duplicates: 0, alreadySealed: 0, rejected: 0 });

    // `sealer enqueue` says so and exits non-zero.
    const jobsDir = path.join(dir, 'jobs');
    await fs.mkdir(jobsDir);
    await fs.writeFile(
      path.join(jobsDir, 'lost.json'),
      JSON.stringify({
        ...JOB_JSON,
        name: 'lost-nightly',
        export: { ...JOB_JSON.export, folder: '../nowhere' },
      }),
    );
    const cli = await promisify(execFile)(
      process.execPath,
      [CLI, 'enqueue', 'lost-nightly', '--jobs', jobsDir],
      {
        env: { ...process.env, REDIS_URL: url, SEALER_PREFIX: prefix, LOG_LEVEL: 'silent' },
      },
    ).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    assert.notEqual(cli.code, 0);
    assert.match(cli.stderr, /job lost-nightly: export folder .*nowhere does not exist/);
    assert.doesNotMatch(cli.stdout, /0 file\(s\)/);
  },
);

test(
  'a scheduled trigger on a missing export folder logs the error and the schedule keeps firing',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { dir, job, queue, redis, prefix } = await setup(0);
    const folder = path.join(dir, 'late-inbox');
    const lines: string[] = [];
    const captured = pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _enc, done) {
          lines.push(chunk.toString());
          done();
        },
      }),
    );
    const outcomes: (ProduceResult | 'skipped' | Error)[] = [];
    let produced!: (r: ProduceResult) => void;
    const firstGoodRun = new Promise<ProduceResult>((resolve) => (produced = resolve));
    let sawError!: () => void;
    const firstError = new Promise<void>((resolve) => (sawError = resolve));
    const everySecond: JobDefinition = { ...job, cron: '* * * * * *', exportFolder: folder };
    const scheduler = new Scheduler({
      jobs: [everySecond],
      queue,
      redis,
      prefix,
      logger: captured,
      onRun: (_j, r) => {
        outcomes.push(r);
        if (r instanceof Error) sawError();
        else if (r !== 'skipped') produced(r);
      },
    });
    scheduler.start();
    try {
      // The triggers fire every second, however slow the machine: the run's --test-timeout bounds the waits.
      await firstError;
      const failed = outcomes.find((o): o is Error => o instanceof Error)!;
      assert.match(failed.message, /job acme-nightly: export folder .*late-inbox does not exist/);
      const logged = lines.map(
        (l) => JSON.parse(l) as { msg: string; job?: string; err?: { message: string } },
      );
      const entry = logged.find((l) => l.msg === 'scheduled run failed');
      assert.equal(entry?.job, 'acme-nightly');
      assert.match(entry?.err?.message ?? '', /late-inbox does not exist/);
      // The folder appears (a share mounted late): a later trigger of the same schedule produces.
      await writeSampleExport({
        dir: folder,
        tenantName: 'Acme K.K.',
        invoicePrefix: 'ACM',
        count: 3,
        encoding: 'utf8',
      });
      const run = await firstGoodRun;
      assert.equal(run.totals.enqueued, 3);
    } finally {
      await scheduler.stop();
    }
  },
);

test(
  'an enqueue failure midway leaves the export in place, names it, and a re-run completes it',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { dir, job, queue, redis, prefix } = await setup(30);
    const exportFile = path.join(dir, 'inbox', 'invoices.csv');
    // The real queue on the real Redis, whose second addBulk call fails (as when Redis goes away).
    const realAddBulk = queue.addBulk.bind(queue);
    let calls = 0;
    queue.addBulk = (async (jobs) => {
      if (++calls === 2) throw new Error('Connection is closed.');
      return realAddBulk(jobs);
    }) as typeof queue.addBulk;
    const result = await produceRun(job, { queue, redis, prefix, logger, chunkSize: 7 });
    assert.equal(calls, 2, 'the file stopped at the failing chunk');
    assert.deepEqual(result.files, []);
    assert.equal(result.failedFiles.length, 1);
    assert.equal(result.failedFiles[0]!.file, exportFile);
    assert.match(result.failedFiles[0]!.error, /invoices\.csv/);
    assert.match(result.failedFiles[0]!.error, /Connection is closed/);
    await fs.access(exportFile);
    assert.deepEqual((await fs.readdir(path.join(dir, 'inbox'))).sort(), ['invoices.csv', 'pdf']);
    assert.equal(await queue.count(), 7, 'the first chunk stayed queued');

    // Redis is back: the same export enqueues the rest, skips the first chunk, and only now moves.
    queue.addBulk = realAddBulk;
    const again = await produceRun(job, { queue, redis, prefix, logger, chunkSize: 7 });
    assert.deepEqual(again.totals, { rows: 30, enqueued: 23, duplicates: 7, alreadySealed: 0, rejected: 0 });
    assert.equal(await queue.count(), 30);
    await assert.rejects(fs.access(exportFile));
    await fs.access(again.files[0]!.processedTo!);
  },
);
