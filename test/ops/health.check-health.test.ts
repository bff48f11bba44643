// checkHealth against real peers: Redis, the sandbox provider (plain and TLS), a real prepare pool; and
// against peers that refuse or hang, where each check must fail by name within its deadline.
import { test } from 'node:test';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PDFDocument } from 'pdf-lib';
import assert from 'node:assert/strict';
import { checkHealth, providerTargets, redact, type HealthReport } from '../../src/ops/health';
import { PreparePool } from '../../src/seal/prepare-pool';
import { startFixture } from '../sandbox/sandbox-fixture';
import { deadPeers } from '../helpers/dead-peers';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const T = { timeout: TEST_TIMEOUT_MS };

function check(report: HealthReport, name: string, target?: string) {
  const found = report.checks.filter((c) => c.name === name && (target === undefined || c.target === target));
  assert.equal(
    found.length,
    1,
    `one ${name} check${target ? ` for ${target}` : ''}: ${JSON.stringify(report)}`,
  );
  return found[0]!;
}

test('all up: Redis answers PING, the provider its info, a pool thread a trivial task', T, async () => {
  const { url } = await testRedis();
  const fx = await startFixture();
  const pool = new PreparePool({ threads: 1 });
  try {
    assert.equal(await pool.alive(60_000), true, 'the thread started');
    const report = await checkHealth({
      redisUrl: url,
      providers: [{ url: fx.sandbox.url }],
      poolAlive: () => pool.alive(),
    });
    assert.equal(report.ok, true, JSON.stringify(report));
    assert.deepEqual(report.checks.map((c) => c.name).sort(), ['pool', 'provider', 'redis']);
    assert.equal(check(report, 'redis').detail, 'PONG');
    assert.equal(check(report, 'provider').detail, 'info answered HTTP 200');
    assert.equal(check(report, 'provider').target, fx.sandbox.url);
    for (const c of report.checks) assert.ok(Number.isInteger(c.ms) && c.ms >= 0);
  } finally {
    await pool.close();
    await fx.close();
  }
});

test(
  'a provider on a closed port is unreachable; one that answers 404 is reachable, status named',
  T,
  async () => {
    const { url } = await testRedis();
    const { closedPort } = await deadPeers();
    const fx = await startFixture();
    try {
      const dead = `http://127.0.0.1:${closedPort}/csc/v2`;
      const wrongPath = `${fx.sandbox.oauth2Url}/no-such-csc`;
      const report = await checkHealth({
        redisUrl: url,
        providers: [{ url: fx.sandbox.url }, { url: dead }, { url: wrongPath }],
      });
      assert.equal(report.ok, false);
      assert.equal(check(report, 'redis').ok, true);
      assert.equal(check(report, 'provider', fx.sandbox.url).ok, true);
      const down = check(report, 'provider', dead);
      assert.equal(down.ok, false);
      assert.match(down.detail!, /^unreachable: .*network error \(ECONNREFUSED\)/);
      const odd = check(report, 'provider', wrongPath);
      assert.equal(odd.ok, true, 'any HTTP answer means the provider is reachable');
      assert.match(odd.detail!, /^reachable; info answered HTTP 404/);
    } finally {
      await fx.close();
    }
  },
);

test('Redis nobody listens on fails the redis check by name, without the password', T, async () => {
  const { closedPort } = await deadPeers();
  const report = await checkHealth({ redisUrl: `redis://:s3cret-pw@127.0.0.1:${closedPort}` });
  assert.equal(report.ok, false);
  const redis = check(report, 'redis');
  assert.equal(redis.ok, false);
  assert.match(redis.detail!, /ECONNREFUSED/);
  assert.equal(redis.target, `redis://:***@127.0.0.1:${closedPort}`);
  assert.doesNotMatch(JSON.stringify(report), /s3cret-pw/);
});

test('peers that accept and never answer: every check fails within its deadline, named', T, async () => {
  const { hangPort } = await deadPeers();
  const timeoutMs = 400;
  const started = performance.now();
  const report = await checkHealth({
    redisUrl: `redis://127.0.0.1:${hangPort}`,
    providers: [{ url: `http://127.0.0.1:${hangPort}/csc/v2` }],
    poolAlive: () => new Promise<boolean>(() => undefined),
    timeoutMs,
  });
  const elapsed = performance.now() - started;
  assert.equal(report.ok, false);
  for (const name of ['redis', 'provider', 'pool']) {
    const c = check(report, name);
    assert.equal(c.ok, false, name);
    // the HTTP layer's own timeout or ours, whichever fires first: both name the deadline
    assert.match(c.detail!, /no answer within 400 ms/, `${name}: ${c.detail}`);
    assert.ok(c.ms >= timeoutMs - 5, `${name} waited its deadline (${c.ms} ms)`);
  }
  // The checks run side by side: about one deadline in all, not three. Generous for a loaded machine.
  assert.ok(elapsed < 3 * timeoutMs + 2000, `answered after ${Math.round(elapsed)} ms`);
});

test(
  'TLS provider: reachable with the job CA file, unreachable (certificate not trusted) without',
  T,
  async () => {
    const fx = await startFixture({ tls: true });
    try {
      assert.match(fx.sandbox.url, /^https:/);
      const report = await checkHealth({
        providers: [{ url: fx.sandbox.url, caFile: fx.sandbox.rootCertPath }],
      });
      assert.equal(report.ok, true, JSON.stringify(report));
      const untrusted = await checkHealth({ providers: [{ url: fx.sandbox.url }] });
      assert.equal(untrusted.ok, false);
      assert.match(check(untrusted, 'provider').detail!, /TLS: provider certificate not trusted/);
    } finally {
      await fx.close();
    }
  },
);

test(
  'the prepare pool is alive when a thread takes a trivial task in time, not when none can',
  T,
  async () => {
    const dir = await tempDir('sealer-pool-alive-');
    // Thousands of pages keep the only thread busy for a while (all of them are parsed by the pdf-lib path), longer on a
    // slower machine, which only makes the jam surer.
    const doc = await PDFDocument.create();
    for (let i = 0; i < 1500; i++) doc.addPage([100, 100]).drawText(`page ${i}`);
    const bytes = await doc.save({ useObjectStreams: false });
    const sourcePath = path.join(dir, 'big.pdf');
    await fs.writeFile(sourcePath, bytes);
    const pool = new PreparePool({ threads: 1 });
    try {
      // A new pool's thread loads the PDF and CMS code first (seconds on a loaded machine): wait for that.
      assert.equal(await pool.alive(60_000), true);
      assert.deepEqual(await Promise.all([pool.alive(), pool.alive(), pool.alive()]), [true, true, true]);

      const busy = pool
        .run({
          sourcePath,
          sourceSha256: crypto.createHash('sha256').update(bytes).digest('hex'),
          signingTime: new Date().toISOString(),
          chain: [], // fails after the slow part, which is all this task is for
          reason: 'r',
          location: 'l',
          name: 'n',
          signatureBytes: 8192,
          // A visible seal takes the pdf-lib path, which parses every page: the fast path would not.
          appearance: { page: 1, x: 10, y: 10, size: 40, text: 'seal' },
        })
        .then(
          () => 'prepared',
          (err: Error) => err.message,
        );
      const report = await checkHealth({ poolAlive: () => pool.alive(100) });
      assert.equal(report.ok, false);
      assert.match(check(report, 'pool').detail!, /no thread finished a trivial task in time/);
      assert.match(await busy, /certificate chain is empty/, 'the jam was that task');
      assert.equal(await pool.alive(), true, 'alive again once the thread is free');
    } finally {
      await pool.close();
    }
  },
);

test('providerTargets: one target per distinct provider URL, the default for jobs without one', T, () => {
  const job = (providerUrl?: string, caFilePath?: string) => ({
    signing: { providerUrl } as never,
    ...(caFilePath ? { caFilePath } : {}),
  });
  assert.deepEqual(
    providerTargets(
      [
        job('https://a.example/csc/v2'),
        job('https://a.example/csc/v2/', '/jobs/a-ca.pem'),
        job(undefined),
        job(undefined),
        job('https://b.example/csc/v1'),
      ],
      'http://127.0.0.1:7000/csc/v2',
    ),
    [
      { url: 'https://a.example/csc/v2', caFile: '/jobs/a-ca.pem' },
      { url: 'http://127.0.0.1:7000/csc/v2' },
      { url: 'https://b.example/csc/v1' },
    ],
  );
  assert.deepEqual(providerTargets([job(undefined)]), [], 'no URL at all: nothing to check');
  assert.equal(redact('https://user:pw@p.example/csc/v2'), 'https://***:***@p.example/csc/v2');
});
