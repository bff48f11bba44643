// Six `sealer work` processes on one TOTP credential: they take turns to authorise (a lease in Redis),
// never send a code of a time step another used (the last step kept in Redis), so the provider sees no
// replay and no failed authorisation, and every invoice is sealed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { loadJobs } from '../../src/jobs';
import { openSealQueue, produceRun, readRun } from '../../src/queue';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { assertSealedExactlyOnce } from '../helpers/outbox-invariants';
import { spawnWorker, type WorkerProcess } from '../helpers/worker-process';
import {
  factorFileRefs,
  sandboxSecretsDir,
  startTestSandbox,
  writeJobFile,
  writeTenantExport,
} from '../helpers/night-fixture';

const WORKERS = 6;
const INVOICES = 120;

test(
  'six worker processes on one TOTP credential seal every invoice with no replayed code',
  { timeout: 300_000 },
  async (t) => {
    const dir = await tempDir();
    const { redis, prefix, connection, url } = await testRedis();
    const sandboxLog = path.join(dir, 'sandbox.log');
    const sandbox = await startTestSandbox(dir, { logFile: sandboxLog });
    await writeTenantExport(path.join(dir, 'inbox', 'fuji'), 'fuji', INVOICES);
    const jobsDir = path.join(dir, 'jobs');
    const secrets = sandboxSecretsDir(dir, 'fuji');
    await writeJobFile(jobsDir, {
      tenant: 'fuji',
      credentialId: 'fuji-eseal-ec',
      providerUrl: sandbox.url,
      secretsDir: secrets,
      // Small SADs, so that the processes authorise again and again during the night.
      signing: {
        ...factorFileRefs(secrets, 'fuji-eseal-ec'),
        totp: { periodSec: 1 },
        batchSize: 5,
        maxSignaturesPerAuthorisation: 10,
      },
    });
    const [job] = await loadJobs(jobsDir);
    const queue = openSealQueue(connection, prefix);
    t.after(() => queue.close());
    const produced = await produceRun(job!, { queue, redis, prefix, logger: pino({ level: 'silent' }) });
    const workers: WorkerProcess[] = [];
    for (let i = 0; i < WORKERS; i++) {
      workers.push(
        await spawnWorker({
          jobsDir,
          redisUrl: url,
          prefix,
          logFile: path.join(dir, `worker-${i}.log`),
          args: ['--concurrency', '10', '--threads', '1'],
        }),
      );
    }
    const deadline = Date.now() + 240_000;
    while ((await readRun(redis, prefix, produced.runId)).settledAt === undefined) {
      assert.ok(Date.now() < deadline, 'the run settles');
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const w of workers) w.child.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.exited));
    const counts = await readRun(redis, prefix, produced.runId);
    // The refusals' own lines go into the failure message: a replayed step and a code that arrived too
    // late (a loaded machine, 1 s steps) read alike in a count.
    const refusalLines = (await fs.readFile(sandboxLog, 'utf8'))
      .split('\n')
      .filter((l) => l.includes('credential authorisation failed'));
    const refusals = refusalLines.length;
    const workerLogs = (await Promise.all(workers.map((w) => fs.readFile(w.logFile, 'utf8')))).join('\n');
    const authorisedBy = workerLogs.match(/"msg":"credential used"/g)?.length ?? 0;
    t.diagnostic(
      `multi-worker: ${JSON.stringify({ workers: WORKERS, invoices: INVOICES, sealed: counts.sealed, failed: counts.failed, authorizeCalls: sandbox.stats().authorize, providerErrors: sandbox.stats().errors, providerRefusals: refusals, workersReporting: authorisedBy })}`,
    );
    assert.equal(counts.failed, 0, 'no invoice failed');
    assert.equal(counts.sealed, INVOICES);
    assert.equal(
      refusals,
      0,
      `the provider refused no authorisation (no replayed code):\n${refusalLines.join('\n')}`,
    );
    assert.doesNotMatch(workerLogs, /invalid_otp|refused earlier/);
    await assertSealedExactlyOnce(path.join(dir, 'outbox'), 'fuji', produced.runDate, INVOICES);
  },
);
