// A decompression bomb among a night's invoices fails alone, at once, naming the limit; the invoices
// in flight beside it are sealed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { loadJobs } from '../../src/jobs';
import { runNight } from '../../src/queue';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { newestXrefStreamBomb } from '../helpers/bomb-pdf';
import { startTestSandbox, writeImplicitSakuraJob, writeTenantExport } from '../helpers/night-fixture';

test(
  'a PDF that inflates to 256 MiB fails alone; the invoices beside it are sealed',
  { timeout: 180_000 },
  async () => {
    const dir = await tempDir();
    const { redis, prefix, connection } = await testRedis();
    const sandbox = await startTestSandbox(dir);
    const inbox = path.join(dir, 'inbox', 'sakura');
    await writeTenantExport(inbox, 'sakura', 12);
    // The core system exported a hostile file under an ordinary invoice's name.
    // (As its newest cross-reference stream, which every prepare reads.)
    await fs.writeFile(path.join(inbox, 'pdf', 'SKR-000003.pdf'), newestXrefStreamBomb(256));
    const jobsDir = path.join(dir, 'jobs');
    await writeImplicitSakuraJob(dir, jobsDir, sandbox, { batchSize: 4 });
    const night = await runNight({
      jobs: await loadJobs(jobsDir),
      connection,
      redis,
      prefix,
      logger: pino({ level: 'silent' }),
      concurrency: 12,
      threads: 2,
      jobOptions: { attempts: 3, backoff: { type: 'fixed', delay: 100 } },
    });
    const run = night.runs[0]!;
    assert.equal(run.counts.sealed, 11);
    assert.equal(run.counts.failed, 1);
    assert.equal(run.failures.length, 1);
    const failure = run.failures[0]! as { invoice: string; reason: string; kind?: string; attempts?: number };
    assert.equal(failure.invoice, 'SKR-000003');
    assert.equal(failure.kind, 'unsealable');
    assert.equal(failure.attempts, 1, 'failed at once, not retried');
    assert.match(failure.reason, /inflat/i);
  },
);
