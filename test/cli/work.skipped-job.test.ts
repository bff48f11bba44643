// One tenant's missing secret does not stop the other tenant's night: `sealer work` names the job it
// cannot use, seals the other tenant's invoices, and leaves the skipped tenant's invoices waiting
// (delayed, not failed) for a worker that can seal them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import pino from 'pino';
import { loadJobs } from '../../src/jobs';
import { openSealQueue, produceRun, readRun } from '../../src/queue';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import {
  factorFileRefs,
  sandboxSecretsDir,
  startTestSandbox,
  writeImplicitSakuraJob,
  writeJobFile,
  writeTenantExport,
} from '../helpers/night-fixture';

const CLI = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

test(
  'work skips a job whose secret is missing and seals the other tenant',
  { timeout: 180_000 },
  async (t) => {
    const dir = await tempDir();
    const { redis, prefix, connection, url } = await testRedis();
    const sandbox = await startTestSandbox(dir);
    const jobsDir = path.join(dir, 'jobs');
    await writeTenantExport(path.join(dir, 'inbox', 'sakura'), 'sakura', 6);
    await writeTenantExport(path.join(dir, 'inbox', 'fuji'), 'fuji', 4);
    await writeImplicitSakuraJob(dir, jobsDir, sandbox, { batchSize: 3 });
    const fujiSecrets = sandboxSecretsDir(dir, 'fuji');
    await writeJobFile(jobsDir, {
      tenant: 'fuji',
      credentialId: 'fuji-eseal-ec',
      providerUrl: sandbox.url,
      secretsDir: fujiSecrets,
      signing: {
        ...factorFileRefs(fujiSecrets, 'fuji-eseal-ec'),
        pin: `file:${dir}/no-such-pin`,
        totp: { periodSec: 1 },
      },
    });
    const jobs = await loadJobs(jobsDir);
    const queue = openSealQueue(connection, prefix);
    t.after(() => queue.close());
    const runs = new Map<string, string>();
    for (const job of jobs) {
      const r = await produceRun(job, { queue, redis, prefix, logger: pino({ level: 'silent' }) });
      runs.set(job.tenant, r.runId);
    }
    const child = spawn(
      process.execPath,
      [CLI, 'work', '--jobs', jobsDir, '--concurrency', '8', '--threads', '1', '--metrics-port', '0'],
      {
        env: { ...process.env, REDIS_URL: url, SEALER_PREFIX: prefix, LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    t.after(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    const deadline = Date.now() + 120_000;
    while ((await readRun(redis, prefix, runs.get('sakura')!)).settledAt === undefined) {
      assert.equal(child.exitCode, null, `the worker exited early: ${stderr}`);
      assert.ok(Date.now() < deadline, 'sakura settles');
      await new Promise((r) => setTimeout(r, 100));
    }
    // fuji's invoices reach the worker and are put back to wait, none failed.
    while (((await queue.getJobCounts('delayed')).delayed ?? 0) < 4) {
      assert.ok(Date.now() < deadline, 'fuji invoices wait');
      await new Promise((r) => setTimeout(r, 100));
    }
    // The worker's /metrics counts what it sealed; /healthz says Redis, provider and pool are fine.
    const base = /metrics: (http:\/\/\S+)\/metrics/.exec(stderr)?.[1];
    assert.ok(base, `the worker names its metrics URL: ${stderr}`);
    // The counter moves just after the run record does (the run can read settled a moment before the
    // sixth is counted): ask until it shows all six, as a scraper would.
    const sealedSix = /^sealer_invoices_sealed_total\{tenant="sakura",level="B-B"\} 6$/m;
    let exposition = await (await fetch(`${base}/metrics`)).text();
    while (!sealedSix.test(exposition) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      exposition = await (await fetch(`${base}/metrics`)).text();
    }
    assert.match(exposition, sealedSix);
    const healthz = await fetch(`${base}/healthz`);
    const report = (await healthz.json()) as { ok: boolean; checks: { name: string; ok: boolean }[] };
    assert.equal(healthz.status, 200, JSON.stringify(report));
    assert.deepEqual([...new Set(report.checks.map((c) => c.name))].sort(), ['pool', 'provider', 'redis']);
    child.kill('SIGTERM');
    await exited;
    const sakura = await readRun(redis, prefix, runs.get('sakura')!);
    const fuji = await readRun(redis, prefix, runs.get('fuji')!);
    assert.equal(sakura.sealed, 6);
    assert.equal(fuji.failed, 0, 'no fuji invoice failed');
    assert.equal(fuji.sealed, 0);
    assert.match(stderr, /job fuji-nightly skipped: job fuji-nightly: .*no-such-pin/);
    assert.equal((await queue.getJobCounts('failed')).failed ?? 0, 0);
  },
);
