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

test('start() fires each job on its cron in its time zone and names the run by that zone', async () => {
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
  scheduler.start();
  await Promise.race([
    firstRun,
    new Promise((_, reject) => setTimeout(() => reject(new Error('no trigger in 5 s')), 5000)),
  ]);
  await scheduler.stop();
  assert.equal(runs[0]!.totals.enqueued, 3);
  // Kiritimati is UTC+14: its date is the UTC date of 14 hours later.
  const expected = new Date(Date.now() + 14 * 3600_000).toISOString().slice(0, 10);
  assert.equal(runs[0]!.runDate, expected);
  assert.equal(await queue.count(), 3);
});
