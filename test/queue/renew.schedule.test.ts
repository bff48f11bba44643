// A job definition's `renew: { cron, within }` block: validated at load, turned by the renewal
// scheduler into a cron trigger in the job's time zone, and a trigger runs the same pass as
// `sealer renew --tenant` (one at a time per job).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { loadJobSet, loadJobs } from '../../src/jobs';
import { RenewScheduler, runNight, summaryLine } from '../../src/queue';
import { readManifest } from '../../src/outbox';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { startTestSandbox, writeImplicitSakuraJob, writeTenantExport } from '../helpers/night-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const silent = pino({ level: 'silent' });

async function withRenewBlock(file: string, renew: unknown): Promise<void> {
  const def = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>;
  await fs.writeFile(file, JSON.stringify({ ...def, renew }));
}

test(
  'a renew block schedules a renewal trigger for the job tenant; a trigger renews, a second one at the same time is skipped',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { redis, prefix, connection } = await testRedis();
    const sandbox = await startTestSandbox(dir, { tsaCertificateDays: 30 });
    const jobsDir = path.join(dir, 'jobs');
    await writeTenantExport(path.join(dir, 'inbox', 'sakura'), 'sakura', 2);
    const file = await writeImplicitSakuraJob(dir, jobsDir, sandbox, {
      level: 'B-LTA',
      trustRoots: [sandbox.rootCertPath],
    });
    const night = await runNight({
      jobs: await loadJobs(jobsDir),
      connection,
      redis,
      prefix,
      logger: silent,
    });
    assert.equal(night.runs[0]!.counts.sealed, 2);
    await sandbox.rotateTsaCertificate(3650);

    await withRenewBlock(file, { cron: '0 3 1 * *', within: 'soon' });
    const bad = await loadJobSet(jobsDir);
    assert.equal(bad.jobs.length, 0);
    assert.match(bad.problems[0]!.reason, /renew.*within|within.*d, h or m/s, bad.problems[0]!.reason);

    await withRenewBlock(file, { cron: '0 3 1 * *', within: '90d' });
    const jobs = await loadJobs(jobsDir);
    const results: unknown[] = [];
    const scheduler = new RenewScheduler({
      jobs,
      connection,
      redis,
      prefix,
      logger: silent,
      jobOptions: { attempts: 3, backoff: { type: 'fixed', delay: 100 } },
      onRun: (_job, r) => results.push(r),
    });
    scheduler.start();
    try {
      const next = scheduler.nextRun('sakura-nightly');
      assert.ok(next, 'a renewal trigger is scheduled');
      // 03:00 on the 1st in Asia/Tokyo is 18:00 UTC the day before.
      assert.equal(next.getUTCHours(), 18);
      const [a, b] = await Promise.all([scheduler.trigger(jobs[0]!), scheduler.trigger(jobs[0]!)]);
      const summary = a === 'skipped' ? b : a;
      assert.ok((a === 'skipped') !== (b === 'skipped'), 'one of two simultaneous triggers is skipped');
      assert.ok(summary !== 'skipped');
      assert.equal(summaryLine(summary), 'renew: 2 files checked, 2 renewed, 0 skipped, 0 failed');
      const rows = await readManifest(
        path.join(dir, 'outbox', 'sakura', night.runs[0]!.produced.runDate, 'manifest.csv'),
      );
      assert.equal(rows.length, 4, 'two rows appended by the renewal');
      const after = await scheduler.trigger(jobs[0]!);
      assert.ok(after !== 'skipped');
      assert.equal(
        summaryLine(after),
        'renew: 2 files checked, 0 renewed, 2 skipped (2 up to date), 0 failed',
      );
    } finally {
      await scheduler.stop();
    }
  },
);
