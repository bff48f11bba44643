// Redis restarts and outages during a night: a worker logs once that Redis is gone and once that it is
// back (no client stack traces), in-flight invoices are sealed exactly once afterwards, and SIGTERM
// during an outage exits within the grace period, saying what it left unfinished.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { connectRedis } from '../../src/common/redis';
import { loadJobs } from '../../src/jobs';
import { openSealQueue, produceRun, readRun } from '../../src/queue';
import { tempDir } from '../helpers/temp-dir';
import { privateRedis } from '../helpers/private-redis';
import { assertSealedExactlyOnce } from '../helpers/outbox-invariants';
import { startTestSandbox, writeImplicitSakuraJob, writeTenantExport } from '../helpers/night-fixture';
import { spawnWorker, until } from '../helpers/worker-process';

const INVOICES = 160;
const GRACE_SEC = 3;
// How long Redis stays down the first time; a manual run can try a minute (SEALER_TEST_OUTAGE_SEC=60).
const OUTAGE_SEC = Number(process.env.SEALER_TEST_OUTAGE_SEC ?? 4);
const PREFIX = 'outage';

test(
  'a worker survives a Redis crash and restart, and SIGTERM during an outage exits within the grace period',
  { timeout: 300_000 },
  async (t) => {
    const dir = await tempDir();
    const redisDir = path.join(dir, 'redis');
    await fs.mkdir(redisDir);
    const server = await privateRedis(redisDir);
    const redis = connectRedis(server.url, { maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined);
    t.after(() => redis.disconnect());
    const sandbox = await startTestSandbox(dir);
    await writeTenantExport(path.join(dir, 'inbox', 'sakura'), 'sakura', INVOICES);
    const jobsDir = path.join(dir, 'jobs');
    await writeImplicitSakuraJob(dir, jobsDir, sandbox, { batchSize: 8 });
    const [job] = await loadJobs(jobsDir);
    const queue = openSealQueue({ url: server.url, maxRetriesPerRequest: null }, PREFIX, {
      attempts: 6,
      backoff: { type: 'fixed', delay: 200 },
      removeOnComplete: false,
      removeOnFail: false,
    });
    queue.on('error', () => undefined);
    const produced = await produceRun(job!, {
      queue,
      redis,
      prefix: PREFIX,
      logger: pino({ level: 'silent' }),
    });
    await queue.close();
    const runId = produced.runId;
    const settled = async () => {
      const c = await readRun(redis, PREFIX, runId);
      return c.sealed + c.alreadySealed + c.failed;
    };

    const start = (name: string) =>
      spawnWorker({
        jobsDir,
        redisUrl: server.url,
        prefix: PREFIX,
        logFile: path.join(dir, `${name}.log`),
        args: [
          '--concurrency',
          '16',
          '--threads',
          '1',
          '--grace',
          String(GRACE_SEC),
          '--lock-duration',
          '5000',
          '--stalled-interval',
          '2000',
        ],
      });

    const a = await start('worker-a');
    await until('progress before the first outage', 120_000, async () => (await settled()) >= 30);
    // A crash of Redis, a few seconds down, then back on the same data (AOF).
    await server.kill();
    await new Promise((r) => setTimeout(r, OUTAGE_SEC * 1000));
    await server.start();
    await until('progress after Redis came back', 120_000, async () => (await settled()) >= 60);
    // If the worker told the first outage, it tells its end too (it has sealed since): wait for the line.
    const readLog = () => fs.readFile(a.logFile, 'utf8');
    if (/Redis is unreachable/.test(await readLog())) {
      await until('the "back" line of the first outage', 60_000, async () =>
        /Redis is back/.test(await readLog()),
      );
    }
    // Down again, and the worker is told to stop while it cannot finish its jobs.
    await server.kill();
    await new Promise((r) => setTimeout(r, 500));
    const termAt = Date.now();
    a.child.kill('SIGTERM');
    const end = await a.exited;
    const exitMs = end.at - termAt;
    const aLog = await fs.readFile(a.logFile, 'utf8');
    t.diagnostic(
      `SIGTERM to exit during a Redis outage: ${exitMs} ms (grace ${GRACE_SEC} s), exit code ${end.code}`,
    );
    assert.ok(exitMs < (GRACE_SEC + 5) * 1000, `exited ${exitMs} ms after SIGTERM`);
    assert.match(aLog, /worker stopped after 3 s grace: \d+ invoice\(s\) unfinished \(Redis unreachable\)/);
    // One "gone" line per outage at most: the first outage's, and the second's if the worker noticed it
    // in the 500 ms before SIGTERM (a loaded machine's sometimes does not, so waiting for the line
    // is no condition to wait on).
    const gone = (aLog.match(/Redis is unreachable/g) ?? []).length;
    assert.ok(gone === 1 || gone === 2, `one "gone" line per outage at most, and the first's: ${gone}`);
    // "Back" lines only after a "gone" line, at most one, never a flood: the outages as the worker
    // told them, in order (G gone, B back). Two outages noticed means the first was seen to end
    // (exactly GBG); a loaded machine may notice neither the first outage's start nor the second's.
    const told = (aLog.match(/Redis is (unreachable|back)/g) ?? []).map((l) =>
      l.endsWith('back') ? 'B' : 'G',
    );
    const sequence = told.join('');
    assert.match(sequence, /^(GB)?G?$/, `the outages as told: ${sequence}`);
    if (gone === 2) assert.equal(sequence, 'GBG', `two outages noticed, the first seen to end: ${sequence}`);
    assert.doesNotMatch(aLog, /Unhandled error event|^\s+at /m, 'no client stack traces');

    // Redis back, a new worker finishes the night: every invoice sealed exactly once.
    await server.start();
    const b = await start('worker-b');
    await until(
      'the run to settle',
      180_000,
      async () => (await readRun(redis, PREFIX, runId)).settledAt !== undefined,
    );
    b.child.kill('SIGTERM');
    await b.exited;
    const counts = await readRun(redis, PREFIX, runId);
    assert.equal(counts.failed, 0);
    assert.equal(counts.sealed + counts.alreadySealed, INVOICES, 'the counts equal the invoices');
    const figures = await assertSealedExactlyOnce(
      path.join(dir, 'outbox'),
      'sakura',
      produced.runDate,
      INVOICES,
    );
    t.diagnostic(
      `redis outage: ${JSON.stringify({ outageSec: OUTAGE_SEC, invoices: INVOICES, ...counts, ...figures, signatures: sandbox.stats().signatures })}`,
    );
  },
);
