// The worker verifies each embedded signature before it writes anything: a provider (or a path to it)
// that returns wrong signatures makes the invoices fail with that reason, and nothing reaches the outbox.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import pino from 'pino';
import { startSandbox } from '../../src/sandbox';
import { loadJobFile } from '../../src/jobs';
import { runNight } from '../../src/queue';
import { writeSampleExport, SAMPLE_COLUMNS } from '../../src/demo/sample-exports';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

const silent = pino({ level: 'silent' });
const INVOICES = 5;

/** Forwards every request to `target` as it is, but flips one byte of each signature in signHash answers. */
async function corruptingProxy(
  target: string,
): Promise<{ url: string; corrupted: () => number; close: () => Promise<void> }> {
  const upstream = new URL(target);
  let corrupted = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers = { ...req.headers, host: upstream.host };
      const out = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
        (answer) => {
          const body: Buffer[] = [];
          answer.on('data', (c: Buffer) => body.push(c));
          answer.on('end', () => {
            let bytes = Buffer.concat(body);
            if (req.url?.endsWith('/signatures/signHash') && answer.statusCode === 200) {
              const json = JSON.parse(bytes.toString('utf8')) as { signatures: string[] };
              json.signatures = json.signatures.map((b64) => {
                const sig = Buffer.from(b64, 'base64');
                sig[sig.length >> 1]! ^= 0x01;
                corrupted++;
                return sig.toString('base64');
              });
              bytes = Buffer.from(JSON.stringify(json), 'utf8');
            }
            const { 'content-length': _length, 'transfer-encoding': _te, ...rest } = answer.headers;
            res.writeHead(answer.statusCode ?? 502, { ...rest, 'content-length': bytes.length });
            res.end(bytes);
          });
        },
      );
      out.on('error', () => res.destroy());
      out.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    corrupted: () => corrupted,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function filesUnder(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir, { recursive: true, withFileTypes: true }))
      .filter((e) => !e.isDirectory()) // sealed-index entries are links
      .map((e) => path.join(e.parentPath, e.name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

test(
  'signatures that do not verify fail their invoices and write no PDF and no manifest row',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { redis, prefix, connection } = await testRedis();
    const sandboxDir = path.join(dir, 'sandbox');
    const sandbox = await startSandbox({ totpPeriodSec: 1, dataDir: sandboxDir, port: 0, logger: silent });
    after(() => sandbox.close());
    const proxy = await corruptingProxy(sandbox.oauth2Url);
    after(() => proxy.close());

    await writeSampleExport({
      dir: path.join(dir, 'inbox'),
      tenantName: 'Sakura Shoji K.K.',
      invoicePrefix: 'SKR',
      count: INVOICES,
      encoding: 'utf8',
    });
    const secrets = path.join(sandboxDir, 'secrets', 'sakura');
    await fs.writeFile(
      path.join(dir, 'sakura.json'),
      JSON.stringify({
        name: 'sakura-nightly',
        cron: '0 2 * * *',
        tenant: 'sakura',
        export: { folder: 'inbox', encoding: 'utf8', columns: SAMPLE_COLUMNS },
        signing: {
          providerUrl: `${proxy.url}/csc/v2`,
          clientId: 'sakura-app',
          clientSecret: `file:${secrets}/client-secret`,
          credentialId: 'sakura-eseal-rsa',
          pin: `file:${secrets}/sakura-eseal-rsa.pin`,
          totpSecret: `file:${secrets}/sakura-eseal-rsa.totp`,
          totp: { periodSec: 1 },
          batchSize: 10,
        },
        outbox: 'outbox',
      }),
    );
    const job = await loadJobFile(path.join(dir, 'sakura.json'));

    const night = await runNight({
      jobs: [job],
      connection,
      redis,
      prefix,
      logger: silent,
      concurrency: 10,
      // a retry gets another wrong signature: it must not write either
      jobOptions: { attempts: 2, backoff: { type: 'fixed', delay: 100 } },
      timeoutMs: 30_000,
    });

    const run = night.runs[0]!;
    assert.ok(sandbox.stats().signHash >= 1, 'the provider signed');
    assert.ok(proxy.corrupted() >= INVOICES, 'every signature returned was corrupted on the way');
    assert.equal(run.counts.sealed, 0);
    assert.equal(run.counts.failed, INVOICES);
    assert.equal(run.failures.length, INVOICES);
    for (const failure of run.failures) {
      assert.match(failure.reason, new RegExp(`invoice ${failure.invoice}: sealed PDF did not verify`));
    }
    // Only the run's report for finance, which lists them failed: no sealed file, no manifest row.
    const written = (await filesUnder(path.join(dir, 'outbox'))).filter(
      (f) => !f.split(path.sep).includes('runs'),
    );
    assert.deepEqual(
      written.filter((f) => f.endsWith('.pdf') || path.basename(f).startsWith('manifest')),
      [],
      'no sealed PDF and no manifest in the outbox',
    );
    assert.deepEqual(
      written.filter((f) => f.includes(`${path.sep}.sealed${path.sep}`)),
      [],
      'nothing recorded as sealed',
    );
  },
);
