// Jobs waiting for their signature lend their slots: with 2 working slots, a batch of 5 still fills,
// because the jobs whose hashes wait in the signer make room for the next ones. Held to 2 slots, each
// signHash call could carry 2 hashes at most (10 invoices: 5 calls); lent, it carries 5 (2 calls).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import pino from 'pino';
import { loadJobs } from '../../src/jobs';
import { runNight } from '../../src/queue';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { assertSealedExactlyOnce } from '../helpers/outbox-invariants';
import { startTestSandbox, writeImplicitSakuraJob, writeTenantExport } from '../helpers/night-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const N = 10;
const BATCH = 5;

async function night(awaitingSignature: number) {
  const dir = await tempDir();
  const { redis, prefix, connection } = await testRedis();
  const sandbox = await startTestSandbox(dir);
  await writeTenantExport(path.join(dir, 'inbox', 'sakura'), 'sakura', N);
  const jobsDir = path.join(dir, 'jobs');
  await writeImplicitSakuraJob(dir, jobsDir, sandbox, { batchSize: BATCH });
  const result = await runNight({
    jobs: await loadJobs(jobsDir),
    connection,
    redis,
    prefix,
    logger: pino({ level: 'silent' }),
    concurrency: 2,
    awaitingSignature,
    threads: 1,
    // Batches are sent full (or when every invoice is in): a partial one waits long, so the count
    // of calls says how many hashes could be in the signer at once.
    batchMaxWaitMs: 60_000,
    batchMaxDelayMs: 60_000,
    timeoutMs: 120_000,
  });
  const run = result.runs[0]!;
  await assertSealedExactlyOnce(path.join(dir, 'outbox'), 'sakura', run.produced.runDate, N);
  return { run, credential: result.credentials[0]! };
}

test(
  'with 2 working slots and 8 lendable, signHash calls carry full batches of 5',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { run, credential } = await night(8);
    assert.deepEqual(
      { sealed: run.counts.sealed, failed: run.counts.failed },
      { sealed: N, failed: 0 },
      JSON.stringify(run.failures),
    );
    assert.deepEqual(
      { signHashCalls: credential.signHashCalls, signatures: credential.signatures },
      { signHashCalls: N / BATCH, signatures: N },
    );
  },
);
