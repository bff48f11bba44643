// A parked approval that the provider no longer honours (its count ran out on the provider's side, e.g.
// after an answer was lost) must not fail the tenant's invoices: the approval is retired for every
// worker process and the invoices wait for the next approval.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { createLogger } from '../../src/common/logger';
import { CscClient, totpCode } from '../../src/csc';
import { ParkedApprovals } from '../../src/custody';
import { loadJobs } from '../../src/jobs';
import { runNight } from '../../src/queue';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import {
  sandboxSecret,
  sandboxSecretsDir,
  startTestSandbox,
  writeJobFile,
  writeTenantExport,
} from '../helpers/night-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

test(
  'an approval the provider refuses is retired and the invoices wait instead of failing',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { redis, prefix, connection } = await testRedis();
    const sandbox = await startTestSandbox(dir);
    const kek = crypto.randomBytes(32);
    const env = { ...process.env, TEST_KEK: kek.toString('hex') };
    await writeTenantExport(path.join(dir, 'inbox'), 'sakura', 3);
    await writeJobFile(path.join(dir, 'jobs'), {
      tenant: 'sakura',
      credentialId: 'sakura-eseal-rsa',
      providerUrl: sandbox.url,
      secretsDir: sandboxSecretsDir(dir, 'sakura'),
      export: { folder: '../inbox' },
      signing: { custody: { mode: 'approval', via: 'prompt', kek: 'env:TEST_KEK' }, batchSize: 3 },
    });
    const jobs = await loadJobs(path.join(dir, 'jobs'));

    // The provider granted 2 signatures, but the parked record believes 10 (its count and ours differ).
    const read = (f: string) => sandboxSecret(dir, 'sakura', f);
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
      // The three invoices go in one batch of 3 (more than the provider's 2), however loaded the machine.
      batchMaxWaitMs: 10_000,
      batchMaxDelayMs: 10_000,
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
  },
);
