// A parked approval that the provider no longer honours (its count ran out on the provider's side, e.g.
// after an answer was lost) must not fail the tenant's invoices: the approval is retired for every
// worker process and the invoices wait for the next approval.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { startSandbox } from '../../src/sandbox';
import { createLogger } from '../../src/common/logger';
import { CscClient, ParkedApprovals, totpCode } from '../../src/csc';
import { loadJobs } from '../../src/jobs';
import { runNight } from '../../src/queue';
import { writeSampleExport, SAMPLE_COLUMNS } from '../../src/demo/sample-exports';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';

test('an approval the provider refuses is retired and the invoices wait instead of failing', async () => {
  const dir = await tempDir();
  const { redis, prefix, connection } = await testRedis();
  const sandbox = await startSandbox({
    totpPeriodSec: 1,
    dataDir: path.join(dir, 'sandbox'),
    logger: pino({ level: 'silent' }),
  });
  after(() => sandbox.close());
  const kek = crypto.randomBytes(32);
  const env = { ...process.env, TEST_KEK: kek.toString('hex') };
  await writeSampleExport({
    dir: path.join(dir, 'inbox'),
    tenantName: 'Sakura Shoji K.K.',
    invoicePrefix: 'SKR',
    count: 3,
    encoding: 'utf8',
  });
  const secrets = path.join(dir, 'sandbox', 'secrets', 'sakura');
  await fs.mkdir(path.join(dir, 'jobs'));
  await fs.writeFile(
    path.join(dir, 'jobs', 'sakura.json'),
    JSON.stringify({
      name: 'sakura-nightly',
      cron: '0 2 * * *',
      tenant: 'sakura',
      export: { folder: '../inbox', columns: SAMPLE_COLUMNS },
      signing: {
        providerUrl: sandbox.url,
        clientId: 'sakura-app',
        clientSecret: `file:${secrets}/client-secret`,
        credentialId: 'sakura-eseal-rsa',
        custody: { mode: 'approval', via: 'prompt', kek: 'env:TEST_KEK' },
        batchSize: 3,
      },
      outbox: '../outbox',
    }),
  );
  const jobs = await loadJobs(path.join(dir, 'jobs'));

  // The provider granted 2 signatures, but the parked record believes 10 (its count and ours differ).
  const read = (f: string) => fs.readFile(path.join(secrets, f), 'utf8').then((s) => s.trim());
  const client = new CscClient({
    baseUrl: sandbox.url,
    auth: { kind: 'client_credentials', clientId: 'sakura-app', clientSecret: await read('client-secret') },
  });
  await client.credentialInfo('sakura-eseal-rsa');
  const { sad, expiresAt } = await client.authorize({
    credentialId: 'sakura-eseal-rsa',
    numSignatures: 2,
    pin: await read('sakura-eseal-rsa.pin'),
    otp: totpCode(await read('sakura-eseal-rsa.totp'), { period: 1 }),
  });
  const parked = new ParkedApprovals(redis, prefix);
  await parked.park(
    {
      tenant: 'sakura',
      credentialId: 'sakura-eseal-rsa',
      kind: 'sad',
      value: sad,
      numSignatures: 10,
      expiresAt,
      via: 'prompt',
    },
    kek,
  );

  const logFile = path.join(dir, 'night.log');
  const night = await runNight({
    jobs,
    connection,
    redis,
    prefix,
    logger: createLogger({ level: 'info', destination: pino.destination({ dest: logFile, sync: true }) }),
    env,
    approvalPollMs: 200,
    stopWhenOnlyAwaiting: true,
  });
  const run = night.runs[0]!;
  assert.deepEqual(
    { sealed: run.counts.sealed, failed: run.counts.failed, awaiting: run.counts.awaitingApproval },
    { sealed: 0, failed: 0, awaiting: 3 },
  );
  assert.equal((await parked.status('sakura', 'sakura-eseal-rsa'))?.remaining, 0, 'retired');
  assert.match(await fs.readFile(logFile, 'utf8'), /CSC refused the approval; invoices wait for a new one/);
  // One refused signHash, and no retry hammering the provider with the dead approval.
  assert.equal(sandbox.stats().signHash, 1);
});
