// The gauges read from real Redis at scrape time: each tenant's seal queue by state (jobs added to the
// queues the worker uses, sealQueueName), approvals left on parked approvals; and a scrape with Redis
// gone answers all the same, without those gauges, counting the error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { ParkedApprovals } from '../../src/custody';
import { connectRedis } from '../../src/common/redis';
import { sealQueueName } from '../../src/queue/seal-job';
import { QUEUE_STATES, SealerMetrics } from '../../src/ops/sealer-metrics';
import { parseExposition, samples, value } from '../helpers/prom-text';
import { deadPeers } from '../helpers/dead-peers';
import { testRedis } from '../helpers/test-redis';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const T = { timeout: TEST_TIMEOUT_MS };
const kek = crypto.randomBytes(32);

function depth(s: ReturnType<typeof parseExposition>, tenant: string): Record<string, number | undefined> {
  return Object.fromEntries(
    QUEUE_STATES.map((state) => [state, value(s, 'sealer_queue_depth', { tenant, state })]),
  );
}

/** Connections this test's queues and workers hold: BullMQ names each `<prefix>:<base64 queue name>`. */
async function connectionsNamed(redis: ReturnType<typeof connectRedis>, prefix: string): Promise<number> {
  const list = (await redis.client('LIST')) as string;
  return list.split('\n').filter((l) => l.includes(` name=${prefix}:`)).length;
}

async function until(what: string, ok: () => Promise<boolean> | boolean): Promise<void> {
  for (let i = 0; !(await ok()); i++) {
    if (i > 2000) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test(
  'queue depth per tenant and state, from the queues sealQueueName names; one Queue each, reused',
  T,
  async () => {
    const { redis, prefix, connection } = await testRedis();
    const sakura = new Queue(sealQueueName('sakura'), { connection, prefix });
    const fuji = new Queue(sealQueueName('fuji'), { connection, prefix });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const worker = new Worker(
      sealQueueName('fuji'),
      async (job) => {
        if (job.name === 'bad') throw new UnrecoverableError('not a PDF');
        await held;
      },
      { connection, prefix, concurrency: 2 },
    );
    const metrics = new SealerMetrics({
      tenants: ['sakura', 'fuji', 'kaede'],
      queues: { connection, prefix },
    });
    try {
      await sakura.addBulk([1, 2, 3].map((i) => ({ name: 'seal', data: { i } })));
      await sakura.add('seal', { i: 4 }, { delay: 3_600_000 });
      await sakura.add('seal', { i: 5 }, { delay: 3_600_000 });
      await sakura.add('seal', { i: 6 }, { priority: 5 });
      await fuji.add('bad', {}, { attempts: 1 });
      await fuji.add('hold', {});
      await until('fuji: one failed, one active', async () => {
        const c = await fuji.getJobCounts('failed', 'active');
        return c.failed === 1 && c.active === 1;
      });

      const s = parseExposition(await metrics.metrics());
      assert.deepEqual(depth(s, 'sakura'), { waiting: 4, active: 0, delayed: 2, failed: 0, paused: 0 });
      assert.deepEqual(depth(s, 'fuji'), { waiting: 0, active: 1, delayed: 0, failed: 1, paused: 0 });
      assert.deepEqual(depth(s, 'kaede'), { waiting: 0, active: 0, delayed: 0, failed: 0, paused: 0 });
      assert.equal(samples(s, 'sealer_scrape_errors_total').length, 0);

      // A paused tenant's waiting jobs show as paused; the other tenants' stay as they are.
      await sakura.pause();
      await fuji.add('hold', {}, { delay: 3_600_000 });
      const opened = await connectionsNamed(redis, prefix);
      const s2 = parseExposition(await metrics.metrics());
      assert.deepEqual(depth(s2, 'sakura'), { waiting: 0, active: 0, delayed: 2, failed: 0, paused: 4 });
      assert.equal(value(s2, 'sealer_queue_depth', { tenant: 'fuji', state: 'delayed' }), 1);
      await metrics.metrics();
      assert.equal(await connectionsNamed(redis, prefix), opened, 'later scrapes open no connection');
    } finally {
      release();
      await worker.close();
      await Promise.all([sakura.close(), fuji.close()]);
      await metrics.close();
    }
    await until('the scrape queues closed', async () => (await connectionsNamed(redis, prefix)) === 0);
  },
);

test(
  'approvals remaining per tenant and credential; an expired one shows 0; another tenant is left out',
  T,
  async () => {
    const { redis, prefix } = await testRedis();
    const parked = new ParkedApprovals(redis, prefix);
    const base = {
      kind: 'sad' as const,
      via: 'prompt',
      value: `SAD-${crypto.randomBytes(8).toString('hex')}`,
    };
    await parked.park(
      {
        ...base,
        tenant: 'sakura',
        credentialId: 'sakura-eseal-rsa',
        numSignatures: 40,
        expiresAt: Date.now() + 600_000,
      },
      kek,
    );
    await parked.draw('sakura', 'sakura-eseal-rsa', 15, kek);
    await parked.park(
      {
        ...base,
        tenant: 'fuji',
        credentialId: 'fuji-eseal',
        numSignatures: 9,
        expiresAt: Date.now() - 1_000,
      },
      kek,
    );
    await parked.park(
      {
        ...base,
        tenant: 'kaede',
        credentialId: 'kaede-eseal',
        numSignatures: 5,
        expiresAt: Date.now() + 600_000,
      },
      kek,
    );
    const metrics = new SealerMetrics({
      tenants: ['sakura', 'fuji'],
      approvals: parked,
      defaultMetrics: false,
    });
    const text = await metrics.metrics();
    const s = parseExposition(text);
    assert.equal(
      value(s, 'sealer_approvals_remaining', { tenant: 'sakura', credential: 'sakura-eseal-rsa' }),
      25,
    );
    assert.equal(value(s, 'sealer_approvals_remaining', { tenant: 'fuji', credential: 'fuji-eseal' }), 0);
    assert.equal(samples(s, 'sealer_approvals_remaining').length, 2);
    assert.ok(!text.includes(base.value), 'no SAD in the exposition');

    await parked.draw('sakura', 'sakura-eseal-rsa', 5, kek);
    const again = parseExposition(await metrics.metrics());
    assert.equal(
      value(again, 'sealer_approvals_remaining', { tenant: 'sakura', credential: 'sakura-eseal-rsa' }),
      20,
    );
    await metrics.close();
  },
);

test(
  'with Redis unreachable or hanging, a scrape still answers: gauges left out, errors counted',
  T,
  async () => {
    const peers = await deadPeers();
    const errors: Error[] = [];
    const closedUrl = `redis://127.0.0.1:${peers.closedPort}`;
    const hangUrl = `redis://127.0.0.1:${peers.hangPort}`;
    const approvalsRedis = connectRedis(hangUrl, { lazyConnect: true });
    approvalsRedis.on('error', () => undefined);
    const metrics = new SealerMetrics({
      tenants: ['sakura', 'fuji'],
      queues: { connection: { url: closedUrl, maxRetriesPerRequest: null }, prefix: 'sealer-test-down' },
      approvals: new ParkedApprovals(approvalsRedis, 'sealer-test-down'),
      scrapeTimeoutMs: 300,
      onError: (err) => errors.push(err),
    });
    try {
      metrics.observe({ type: 'sealed', tenant: 'sakura', job: 'j', runId: 'r', level: 'B-B', ms: 5 });
      for (let scrape = 1; scrape <= 3; scrape++) {
        const text = await metrics.metrics();
        const s = parseExposition(text);
        assert.equal(samples(s, 'sealer_queue_depth').length, 0, 'no queue depth without Redis');
        assert.equal(samples(s, 'sealer_approvals_remaining').length, 0, 'no approvals without Redis');
        assert.equal(value(s, 'sealer_scrape_errors_total', { gauge: 'sealer_queue_depth' }), scrape);
        assert.equal(value(s, 'sealer_scrape_errors_total', { gauge: 'sealer_approvals_remaining' }), scrape);
        // the rest of the scrape is intact
        assert.equal(value(s, 'sealer_invoices_sealed_total', { tenant: 'sakura', level: 'B-B' }), 1);
        assert.ok(value(s, 'sealer_process_resident_memory_bytes')! > 0);
      }
    } finally {
      await metrics.close();
      approvalsRedis.disconnect();
    }
    assert.ok(errors.length > 0, 'the queue connections reported their errors to onError');
  },
);
