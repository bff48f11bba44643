// A night through a misbehaving provider: 20 % of signHash calls meet a fault (500, 503, 429 with
// Retry-After, dropped connections before, after and in the middle of the answer, a hang past the
// client's timeout, a missing or extra signature, a signature over another hash, a corrupted one), and
// authorisations meet 500s and SADs that expire earlier than they said. Every invoice must end sealed,
// once, verifiably; none written invalid; and the retries are counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import pino from 'pino';
import { loadJobs } from '../../src/jobs';
import { openSealQueue, runNight } from '../../src/queue';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { assertSealedExactlyOnce } from '../helpers/outbox-invariants';
import { nssDbWithRoot, pdfsig } from '../helpers/pdfsig';
import {
  factorFileRefs,
  sandboxSecretsDir,
  startTestSandbox,
  writeImplicitSakuraJob,
  writeJobFile,
  writeTenantExport,
} from '../helpers/night-fixture';

const PER_TENANT = 150;
const FAULTS = [
  'seed=7',
  'signHash:500=0.04',
  'signHash:503=0.03',
  'signHash:429:1s=0.03',
  'signHash:drop:before=0.02',
  'signHash:drop:after=0.02',
  'signHash:drop:mid=0.01',
  'signHash:hang=0.01',
  'signHash:missing=0.01',
  'signHash:extra=0.01',
  'signHash:wrong-hash=0.01',
  'signHash:corrupt=0.01',
  'authorize:500=0.1',
  'authorize:sad-expiry:2uses=0.2',
].join(',');

test(
  'a night through 20 % provider faults seals every invoice once, none invalid',
  { timeout: 600_000 },
  async (t) => {
    const dir = await tempDir();
    const { redis, prefix, connection } = await testRedis();
    const sandbox = await startTestSandbox(dir, { faults: FAULTS });
    const jobsDir = path.join(dir, 'jobs');
    await writeTenantExport(path.join(dir, 'inbox', 'sakura'), 'sakura', PER_TENANT);
    await writeTenantExport(path.join(dir, 'inbox', 'fuji'), 'fuji', PER_TENANT);
    // requestTimeoutSec 2: a hung request is given up quickly, as a real night's 30 s would be.
    await writeImplicitSakuraJob(dir, jobsDir, sandbox, {
      batchSize: 3,
      maxSignaturesPerAuthorisation: 30,
      requestTimeoutSec: 2,
    });
    const fujiSecrets = sandboxSecretsDir(dir, 'fuji');
    await writeJobFile(jobsDir, {
      tenant: 'fuji',
      credentialId: 'fuji-eseal-ec',
      providerUrl: sandbox.url,
      secretsDir: fujiSecrets,
      signing: {
        ...factorFileRefs(fujiSecrets, 'fuji-eseal-ec'),
        totp: { periodSec: 1 },
        batchSize: 10,
        requestTimeoutSec: 2,
      },
    });
    const jobs = await loadJobs(jobsDir);
    const jobOptions = {
      attempts: 10,
      backoff: { type: 'fixed', delay: 200 },
      removeOnComplete: false,
      removeOnFail: false,
    };
    const night = await runNight({
      jobs,
      connection,
      redis,
      prefix,
      logger: pino({ level: 'silent' }),
      concurrency: 40,
      threads: 1,
      jobOptions,
      timeoutMs: 480_000,
    });
    const faults = sandbox.faults.state();
    const queue = openSealQueue(connection, prefix);
    t.after(() => queue.close());
    const done = await queue.getJobs(['completed', 'failed']);
    const retries = done.reduce((n, j) => n + Math.max(0, j.attemptsMade - 1), 0);
    const figures: Record<string, unknown> = {
      invoices: 2 * PER_TENANT,
      injected: faults.total,
      byKind: faults.injected,
      signHashRequests: faults.requests['signatures/signHash'],
      jobRetries: retries,
    };
    for (const run of night.runs) {
      figures[run.tenant] = {
        sealed: run.counts.sealed,
        alreadySealed: run.counts.alreadySealed,
        failed: run.counts.failed,
      };
      assert.deepEqual(run.failures, [], `${run.tenant}: no invoice failed`);
      assert.equal(
        run.counts.sealed + run.counts.alreadySealed,
        PER_TENANT,
        `${run.tenant}: counts equal the invoices`,
      );
      await assertSealedExactlyOnce(path.join(dir, 'outbox'), run.tenant, run.produced.runDate, PER_TENANT);
    }
    t.diagnostic(`fault test: ${JSON.stringify(figures)}`);
    assert.ok(faults.total >= 10, `faults were injected (${faults.total})`);
    assert.ok(retries > 0, 'some invoices needed another attempt');
    // An outside validator agrees on a sample of each tenant's files.
    const nss = await nssDbWithRoot(sandbox.rootCertPath);
    for (const run of night.runs) {
      const folder = path.join(dir, 'outbox', run.tenant, run.produced.runDate);
      for (const n of [1, PER_TENANT]) {
        const file = path.join(
          folder,
          `${run.tenant === 'sakura' ? 'SKR' : 'FJD'}-${String(n).padStart(6, '0')}.pdf`,
        );
        assert.match(await pdfsig(file, nss), /Signature is Valid/);
      }
    }
  },
);
