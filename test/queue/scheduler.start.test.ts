import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { loadJobFile, type JobDefinition } from '../../src/jobs';
import { openSealQueue, Scheduler, type ProduceResult } from '../../src/queue';
import { writeSampleExport, SAMPLE_COLUMNS } from '../../src/demo/sample-exports';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

test(
  'start() fires each job on its cron in its time zone and names the run by that zone',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { redis, prefix, connection } = await testRedis();
    await writeSampleExport({
      dir: path.join(dir, 'inbox'),
      tenantName: 'Acme K.K.',
      invoicePrefix: 'ACM',
      count: 3,
      encoding: 'utf8',
    });
    const jobFile = path.join(dir, 'acme.json');
    await fs.writeFile(
      jobFile,
      JSON.stringify({
        name: 'acme-every-second',
        cron: '* * * * * *',
        timeZone: 'Pacific/Kiritimati',
        tenant: 'acme',
        export: { folder: 'inbox', columns: SAMPLE_COLUMNS },
        signing: { clientId: 'acme-app', clientSecret: 'env:NOPE', credentialId: 'acme-cred' },
        outbox: 'outbox',
      }),
    );
    const job = await loadJobFile(jobFile);
    const queue = openSealQueue(connection, prefix);
    after(() => queue.close());
    const runs: ProduceResult[] = [];
    let fired!: () => void;
    const firstRun = new Promise<void>((resolve) => (fired = resolve));
    const scheduler = new Scheduler({
      jobs: [job],
      queue,
      redis,
      prefix,
      logger: pino({ level: 'silent' }),
      onRun: (_j: JobDefinition, result) => {
        if (typeof result === 'object' && 'runId' in result) {
          runs.push(result);
          fired();
        }
      },
    });
    // Kiritimati is UTC+14: its date is the UTC date of 14 hours later, on one side of the run or the other.
    const kiritimatiDate = () => new Date(Date.now() + 14 * 3600_000).toISOString().slice(0, 10);
    const dateBefore = kiritimatiDate();
    scheduler.start();
    // Every second, however slow the machine: the run's --test-timeout bounds the wait, not a guess.
    await firstRun;
    await scheduler.stop();
    assert.equal(runs[0]!.totals.enqueued, 3);
    assert.ok([dateBefore, kiritimatiDate()].includes(runs[0]!.runDate), runs[0]!.runDate);
    assert.equal(await queue.count(), 3);
  },
);

test(
  "start() computes each trigger's next fire time in the job's own time zone",
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { redis, prefix, connection } = await testRedis();
    const zones = {
      // 02:00 local is 17:00 UTC the day before in Tokyo (UTC+9), 12:00 UTC the day before in Kiritimati
      // (UTC+14), 02:00 UTC in UTC; none of them has daylight saving time. Were the zone ignored, all
      // three would fire at the same instant (02:00 in this process's zone), so at least two would fail.
      'Asia/Tokyo': 17,
      'Pacific/Kiritimati': 12,
      UTC: 2,
    } as const;
    const jobs: JobDefinition[] = [];
    for (const [i, timeZone] of Object.keys(zones).entries()) {
      const jobFile = path.join(dir, `job-${i}.json`);
      await fs.writeFile(
        jobFile,
        JSON.stringify({
          name: `nightly-${i}`,
          cron: '0 2 * * *',
          timeZone,
          tenant: 'acme',
          export: { folder: 'inbox', columns: SAMPLE_COLUMNS },
          signing: { clientId: 'acme-app', clientSecret: 'env:NOPE', credentialId: 'acme-cred' },
          outbox: 'outbox',
        }),
      );
      jobs.push(await loadJobFile(jobFile));
    }
    const queue = openSealQueue(connection, prefix);
    after(() => queue.close());
    const scheduler = new Scheduler({ jobs, queue, redis, prefix, logger: pino({ level: 'silent' }) });
    const before = Date.now();
    scheduler.start();
    try {
      const next = jobs.map((job) => scheduler.nextRun(job.name));
      const computed = Date.now();
      for (const [i, job] of jobs.entries()) {
        const at = next[i];
        assert.ok(at, `${job.name}: node-cron computed a next run`);
        const local = new Intl.DateTimeFormat('en-GB', {
          timeZone: job.timeZone,
          hour: '2-digit',
          minute: '2-digit',
          second: '2-digit',
          hourCycle: 'h23',
        }).format(at);
        assert.equal(local, '02:00:00', `${job.name} fires at 02:00 in ${job.timeZone}`);
        assert.equal(at.getUTCHours(), zones[job.timeZone as keyof typeof zones], job.timeZone);
        assert.ok(at.getTime() > before - 1000 && at.getTime() <= computed + 24 * 3600_000 + 1000);
      }
      assert.equal(new Set(next.map((d) => d!.getTime())).size, 3, 'three zones, three different instants');
    } finally {
      await scheduler.stop();
    }
  },
);
