// GET /metrics and GET /healthz over HTTP, from the worker's own node:http server and from the same
// handlers mounted in express (as the dashboard mounts them), against real Redis and the sandbox.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { checkHealth, type HealthReport } from '../../src/ops/health';
import { metricsRoutes, startMetricsServer } from '../../src/ops/metrics-server';
import { SealerMetrics } from '../../src/ops/sealer-metrics';
import { startFixture } from '../sandbox/sandbox-fixture';
import { deadPeers } from '../helpers/dead-peers';
import { parseExposition, value } from '../helpers/prom-text';
import { testRedis } from '../helpers/test-redis';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const T = { timeout: TEST_TIMEOUT_MS };

interface Answer {
  status: number;
  type: string | null;
  body: string;
}

async function get(url: string, method = 'GET'): Promise<Answer> {
  const res = await fetch(url, { method });
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
}

function metricsWithEvents(): SealerMetrics {
  const m = new SealerMetrics({ tenants: ['sakura'] });
  for (let i = 0; i < 5; i++)
    m.observe({ type: 'sealed', tenant: 'sakura', job: 'j', runId: 'r', level: 'B-T', ms: 80 });
  m.observe({ type: 'failed', tenant: 'sakura', job: 'j', runId: 'r', kind: 'unsealable' });
  return m;
}

test(
  'sealer work server: /metrics exposition, /healthz 200 or 503 naming the failed check, 404, 405',
  T,
  async () => {
    const { url: redisUrl, prefix, connection } = await testRedis();
    const { closedPort } = await deadPeers();
    const fx = await startFixture();
    const metrics = new SealerMetrics({ tenants: ['sakura'], queues: { connection, prefix } });
    for (let i = 0; i < 5; i++) {
      metrics.observe({ type: 'sealed', tenant: 'sakura', job: 'j', runId: 'r', level: 'B-T', ms: 80 });
    }
    let providerUrl = fx.sandbox.url;
    let currentRedis = redisUrl;
    const server = await startMetricsServer({
      host: '127.0.0.1',
      port: 0,
      metrics,
      health: () =>
        checkHealth({ redisUrl: currentRedis, providers: [{ url: providerUrl }], timeoutMs: 1000 }),
    });
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      const m = await get(`${server.url}/metrics`);
      assert.equal(m.status, 200);
      assert.equal(m.type, 'text/plain; version=0.0.4; charset=utf-8');
      assert.equal(m.type, metrics.contentType);
      const s = parseExposition(m.body);
      assert.equal(value(s, 'sealer_invoices_sealed_total', { tenant: 'sakura', level: 'B-T' }), 5);
      assert.equal(value(s, 'sealer_queue_depth', { tenant: 'sakura', state: 'waiting' }), 0);

      const up = await get(`${server.url}/healthz`);
      assert.equal(up.status, 200);
      assert.match(up.type!, /^application\/json/);
      const upBody = JSON.parse(up.body) as HealthReport & { failed?: string[] };
      assert.equal(upBody.ok, true);
      assert.equal(upBody.failed, undefined);
      assert.deepEqual(upBody.checks.map((c) => [c.name, c.ok]).sort(), [
        ['provider', true],
        ['redis', true],
      ]);

      providerUrl = `http://127.0.0.1:${closedPort}/csc/v2`;
      const noProvider = await get(`${server.url}/healthz`);
      assert.equal(noProvider.status, 503);
      const np = JSON.parse(noProvider.body) as HealthReport & { failed: string[] };
      assert.deepEqual(np.failed, ['provider']);
      assert.equal(np.checks.find((c) => c.name === 'redis')?.ok, true);

      providerUrl = fx.sandbox.url;
      currentRedis = `redis://127.0.0.1:${closedPort}`;
      const noRedis = await get(`${server.url}/healthz`);
      assert.equal(noRedis.status, 503);
      assert.deepEqual((JSON.parse(noRedis.body) as { failed: string[] }).failed, ['redis']);

      assert.equal((await get(`${server.url}/`)).status, 404);
      assert.equal((await get(`${server.url}/metrics/extra`)).status, 404);
      assert.equal((await get(`${server.url}/metrics?name[]=x`)).status, 200, 'a query string is ignored');
      assert.equal((await get(`${server.url}/metrics`, 'POST')).status, 405);
      const head = await get(`${server.url}/healthz`, 'HEAD');
      assert.equal(head.status, 503);
      assert.equal(head.body, '');
    } finally {
      await server.close();
      await metrics.close();
      await fx.close();
    }
  },
);

test('/healthz answers within its deadline when a peer hangs', T, async () => {
  const { hangPort } = await deadPeers();
  const metrics = metricsWithEvents();
  const server = await startMetricsServer({
    host: '127.0.0.1',
    port: 0,
    metrics,
    health: () =>
      checkHealth({
        redisUrl: `redis://127.0.0.1:${hangPort}`,
        providers: [{ url: `http://127.0.0.1:${hangPort}/csc/v2` }],
        timeoutMs: 500,
      }),
  });
  try {
    const started = performance.now();
    const res = await get(`${server.url}/healthz`);
    const elapsed = performance.now() - started;
    assert.equal(res.status, 503);
    const body = JSON.parse(res.body) as HealthReport & { failed: string[] };
    assert.deepEqual([...body.failed].sort(), ['provider', 'redis']);
    for (const c of body.checks) assert.match(c.detail!, /no answer within 500 ms/);
    // about one deadline, side by side; generous for a loaded machine
    assert.ok(elapsed < 3000, `answered after ${Math.round(elapsed)} ms`);
  } finally {
    await server.close();
    await metrics.close();
  }
});

test('the same handlers mounted in express serve the dashboard the same answers', T, async () => {
  const metrics = metricsWithEvents();
  let report: HealthReport = { ok: true, checks: [{ name: 'redis', ok: true, detail: 'PONG', ms: 1 }] };
  const routes = metricsRoutes(metrics, async () => report);
  const app = express();
  app.get('/ops/metrics', routes.metrics);
  app.get('/ops/healthz', routes.healthz);
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ops`;
  try {
    const m = await get(`${base}/metrics`);
    assert.equal(m.status, 200);
    assert.equal(m.type, metrics.contentType);
    const s = parseExposition(m.body);
    assert.equal(value(s, 'sealer_invoices_sealed_total', { tenant: 'sakura', level: 'B-T' }), 5);
    assert.equal(value(s, 'sealer_invoices_failed_total', { tenant: 'sakura', kind: 'unsealable' }), 1);
    assert.equal((await get(`${base}/healthz`)).status, 200);
    report = { ok: false, checks: [{ name: 'pool', ok: false, detail: 'no thread finished', ms: 2000 }] };
    const down = await get(`${base}/healthz`);
    assert.equal(down.status, 503);
    assert.deepEqual((JSON.parse(down.body) as { failed: string[] }).failed, ['pool']);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await metrics.close();
  }
});

test('a port already taken is an error from startMetricsServer, not a crash later', T, async () => {
  const metrics = metricsWithEvents();
  const first = await startMetricsServer({
    host: '127.0.0.1',
    port: 0,
    metrics,
    health: async () => ({ ok: true, checks: [] }),
  });
  try {
    const port = Number(new URL(first.url).port);
    await assert.rejects(
      startMetricsServer({
        host: '127.0.0.1',
        port,
        metrics,
        health: async () => ({ ok: true, checks: [] }),
      }),
      /EADDRINUSE/,
    );
  } finally {
    await first.close();
    await metrics.close();
  }
});
