// A provider that is down when the night starts: the jobs fail with a retryable error, BullMQ retries
// them, and they are sealed once the provider answers. A refusal (wrong PIN) fails at once instead.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import pino from 'pino';
import { startSandbox } from '../../src/sandbox';
import { loadJobFile } from '../../src/jobs';
import { openSealQueue, produceRun, readRun, runNight, SealWorker } from '../../src/queue';
import { writeSampleExport, SAMPLE_COLUMNS } from '../../src/demo/sample-exports';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const silent = pino({ level: 'silent' });

async function freePort(): Promise<number> {
  const srv = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

async function setup(dir: string, port: number, pinFile?: string) {
  const sandboxDir = path.join(dir, 'sandbox');
  // Provision once so the secret files exist before the provider is up.
  await (await startSandbox({ totpPeriodSec: 1, dataDir: sandboxDir, logger: silent })).close();
  await writeSampleExport({
    dir: path.join(dir, 'inbox'),
    tenantName: 'Fuji Denki K.K.',
    invoicePrefix: 'FJ',
    count: 6,
    encoding: 'utf8',
  });
  const secrets = path.join(sandboxDir, 'secrets', 'fuji');
  await fs.writeFile(
    path.join(dir, 'fuji.json'),
    JSON.stringify({
      name: 'fuji-nightly',
      cron: '0 2 * * *',
      tenant: 'fuji',
      export: { folder: 'inbox', columns: SAMPLE_COLUMNS },
      signing: {
        providerUrl: `http://127.0.0.1:${port}/csc/v2`,
        clientId: 'fuji-app',
        clientSecret: `file:${secrets}/client-secret`,
        credentialId: 'fuji-eseal-ec',
        pin: pinFile ? `file:${pinFile}` : `file:${secrets}/fuji-eseal-ec.pin`,
        totpSecret: `file:${secrets}/fuji-eseal-ec.totp`,
        totp: { periodSec: 1 },
        batchSize: 3,
      },
      outbox: 'outbox',
    }),
  );
  return { job: await loadJobFile(path.join(dir, 'fuji.json')), sandboxDir };
}

/** A fresh Redis prefix, the job's files and the sandbox up on its port; the sandbox closes after the test. */
async function withSandboxUp(pinFile?: (dir: string) => Promise<string>) {
  const dir = await tempDir();
  const { redis, prefix, connection } = await testRedis();
  const port = await freePort();
  const { job, sandboxDir } = await setup(dir, port, pinFile && (await pinFile(dir)));
  const sandbox = await startSandbox({ totpPeriodSec: 1, dataDir: sandboxDir, port, logger: silent });
  after(() => sandbox.close());
  return { dir, redis, prefix, connection, job, sandbox };
}

test(
  'jobs that met a provider outage are retried by BullMQ and sealed when it is back',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { redis, prefix, connection } = await testRedis();
    const port = await freePort();
    const { job, sandboxDir } = await setup(dir, port);
    // The provider comes up a second after the night starts.
    const up = new Promise<Awaited<ReturnType<typeof startSandbox>>>((resolve) =>
      setTimeout(
        () => resolve(startSandbox({ totpPeriodSec: 1, dataDir: sandboxDir, port, logger: silent })),
        1000,
      ),
    );
    after(async () => (await up).close());
    const night = await runNight({
      jobs: [job],
      connection,
      redis,
      prefix,
      logger: silent,
      concurrency: 6,
      jobOptions: { attempts: 10, backoff: { type: 'fixed', delay: 300 } },
      timeoutMs: 30_000,
    });
    assert.equal(night.runs[0]!.counts.sealed, 6);
    assert.equal(night.runs[0]!.counts.failed, 0);
    assert.ok((await up).stats().signHash >= 2);
  },
);

test(
  'a refused PIN fails the jobs at once, without retries that could lock the key',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { redis, prefix, connection, job, sandbox } = await withSandboxUp(async (dir) => {
      const wrongPin = path.join(dir, 'wrong.pin');
      await fs.writeFile(wrongPin, '000000');
      return wrongPin;
    });
    const night = await runNight({
      jobs: [job],
      connection,
      redis,
      prefix,
      logger: silent,
      concurrency: 6,
      jobOptions: { attempts: 10, backoff: { type: 'fixed', delay: 300 } },
      timeoutMs: 30_000,
    });
    assert.equal(night.runs[0]!.counts.failed, 6);
    assert.equal(night.runs[0]!.counts.sealed, 0);
    assert.match(night.runs[0]!.failures[0]!.reason, /invalid_pin/);
    assert.equal(sandbox.stats().authorize, 1, 'the PIN was sent once, not once per job or retry');
  },
);

test(
  'a budget of held bytes smaller than one source seals the invoices one at a time, every one once',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { dir, redis, prefix, connection, job, sandbox } = await withSandboxUp();
    const night = await runNight({
      jobs: [job],
      connection,
      redis,
      prefix,
      logger: silent,
      concurrency: 6,
      maxHeldBytes: 1,
      // One invoice held at a time never fills a batch of 3: each is sent alone, at once.
      batchMaxWaitMs: 1,
      timeoutMs: 60_000,
    });
    assert.equal(night.runs[0]!.counts.sealed, 6);
    assert.equal(night.runs[0]!.counts.failed, 0);
    assert.equal(sandbox.stats().signHash, 6, 'no two sources were held at once, so no batch held two');
    const outDir = path.join(dir, 'outbox', 'fuji', night.runs[0]!.produced.runDate);
    assert.equal((await fs.readdir(outDir)).filter((f) => f.endsWith('.pdf')).length, 6);
  },
);

test(
  'a worker closing while invoices wait for bytes signs none of them: they go back to the queue unspent',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { redis, prefix, connection, job, sandbox } = await withSandboxUp();
    const queue = openSealQueue(connection, prefix);
    after(() => queue.close());
    // One source held at a time: five of the six wait for bytes while the first is sealed.
    const worker = new SealWorker({
      connection,
      redis,
      prefix,
      jobs: [job],
      logger: silent,
      concurrency: 6,
      maxHeldBytes: 1,
      batchMaxWaitMs: 1,
    });
    let completed = 0;
    let closing: Promise<void> | undefined;
    worker.onJob('completed', () => {
      completed++;
      closing ??= worker.close();
    });
    const running = worker.run();
    const produced = await produceRun(job, { queue, redis, prefix, logger: silent });
    await running;
    await closing;
    const sealed = (await readRun(redis, prefix, produced.runId)).sealed;
    assert.ok(sealed >= 1 && sealed < 6, `some invoices sealed before the close, not all (${sealed})`);
    assert.equal(
      sandbox.stats().signatures,
      sealed,
      'a signature for each sealed invoice, none for the rest',
    );
    // The rest are back in the queue, no attempt spent, for the next worker.
    const tenantQueue = queue.forTenant(job.tenant);
    const waiting = [...(await tenantQueue.getDelayed()), ...(await tenantQueue.getWaiting())];
    assert.equal(waiting.length, 6 - sealed);
    assert.ok(waiting.every((j) => j.attemptsMade === 0));
    assert.ok(completed >= 1);
  },
);
