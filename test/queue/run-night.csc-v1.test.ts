// One night over CSC API v1.0.4: both job definitions name a provider URL ending in /csc/v1, so the
// worker's clients speak v1 (PIN/OTP, hash, hashAlgo); sakura authenticates with OAuth2 client
// credentials, fuji with v1's auth/login. Real Redis and the sandbox; every sealed file is checked by
// pdfsig, and the sandbox's stats and request log show the calls, all of them under /csc/v1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { createLogger } from '../../src/common/logger';
import { loadJobs } from '../../src/jobs';
import { runNight } from '../../src/queue';
import { readManifest } from '../../src/outbox';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import { nssDbWithRoot, pdfsig } from '../helpers/pdfsig';
import {
  factorFileRefs,
  sandboxSecret,
  sandboxSecretsDir,
  startTestSandbox,
  writeJobFile,
  writeTenantExport,
} from '../helpers/night-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

test(
  'a two-tenant night against a CSC v1.0.4 provider seals every invoice, with the calls in the stats',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { redis, prefix, connection } = await testRedis();
    const sandboxLog = path.join(dir, 'sandbox.log');
    const sandbox = await startTestSandbox(dir, { logFile: sandboxLog });
    const v1Url = sandbox.url.replace(/\/csc\/v2$/, '/csc/v1');
    assert.match(v1Url, /\/csc\/v1$/);

    const counts = { sakura: 5, fuji: 4 } as const;
    await writeTenantExport(path.join(dir, 'inbox', 'sakura'), 'sakura', counts.sakura, 'cp932');
    await writeTenantExport(path.join(dir, 'inbox', 'fuji'), 'fuji', counts.fuji, 'utf8');

    const jobsDir = path.join(dir, 'jobs');
    const job = (tenant: string, credentialId: string, signing: Record<string, unknown>) =>
      writeJobFile(jobsDir, {
        tenant,
        credentialId,
        providerUrl: v1Url,
        export: { encoding: 'auto' },
        signing: {
          ...factorFileRefs(sandboxSecretsDir(dir, tenant), credentialId),
          totp: { periodSec: 1 },
          ...signing,
        },
      });
    await job('sakura', 'sakura-eseal-rsa', {
      clientSecret: `file:${sandboxSecretsDir(dir, 'sakura')}/client-secret`,
      batchSize: 5,
    });
    const fujiUser = await sandboxSecret(dir, 'fuji', 'login-user');
    await job('fuji', 'fuji-eseal-ec', {
      serviceAuth: {
        method: 'basic',
        username: fujiUser,
        password: `file:${sandboxSecretsDir(dir, 'fuji')}/login-password`,
      },
      batchSize: 2,
    });
    const jobs = await loadJobs(jobsDir);
    assert.deepEqual(
      jobs.map((j) => j.apiVersion),
      ['v1', 'v1'],
      'a provider URL ending in /csc/v1 means CSC v1',
    );

    const logger = createLogger({
      level: 'info',
      destination: pino.destination({ dest: path.join(dir, 'night.log'), sync: true }),
    });
    const night = await runNight({
      jobs,
      connection,
      redis,
      prefix,
      logger,
      concurrency: 10,
      batchMaxWaitMs: 5_000,
      batchMaxDelayMs: 10_000,
    });

    for (const run of night.runs) {
      assert.deepEqual(
        { sealed: run.counts.sealed, failed: run.counts.failed, failures: run.failures },
        { sealed: counts[run.tenant as keyof typeof counts], failed: 0, failures: [] },
        `${run.tenant}: every invoice sealed`,
      );
    }

    const report = Object.fromEntries(night.credentials.map((c) => [c.tenant, c]));
    assert.equal(report.sakura!.signHashCalls, 1);
    assert.equal(report.fuji!.signHashCalls, 2);
    const stats = sandbox.stats();
    assert.equal(stats.signHash, 3);
    assert.equal(stats.signatures, counts.sakura + counts.fuji);
    assert.equal(stats.authorize, report.sakura!.authorisations + report.fuji!.authorisations);
    assert.ok(stats.authorize >= 2, 'each credential was authorised');
    assert.equal(stats.credentialsInfo, 2);
    assert.ok(stats.token >= 2, 'one service token per tenant at least');
    assert.equal(stats.errors, 0);

    // Every request the worker made went to v1 (the OAuth2 token endpoint lives outside /csc).
    const paths = (await fs.readFile(sandboxLog, 'utf8'))
      .split('\n')
      .filter((l) => l.includes('"msg":"sandbox: request"'))
      .map((l) => (JSON.parse(l) as { path: string }).path);
    const v1Calls = (p: string) => paths.filter((x) => x === `/csc/v1/${p}`).length;
    assert.equal(v1Calls('signatures/signHash'), 3);
    assert.equal(v1Calls('credentials/authorize'), stats.authorize);
    assert.equal(v1Calls('credentials/info'), 2);
    assert.ok(v1Calls('auth/login') >= 1, 'fuji logged in with v1 auth/login');
    assert.deepEqual(
      paths.filter((p) => p.startsWith('/csc/v2')),
      [],
      'nothing was asked of /csc/v2',
    );

    // The sealed files are valid PAdES seals by the sandbox's certificates.
    const nss = await nssDbWithRoot(sandbox.rootCertPath);
    for (const run of night.runs) {
      const outDir = path.join(dir, 'outbox', run.tenant, run.produced.runDate);
      const manifest = await readManifest(path.join(outDir, 'manifest.csv'));
      assert.equal(manifest.length, counts[run.tenant as keyof typeof counts]);
      for (const row of manifest) {
        const out = await pdfsig(path.join(outDir, row.file), nss);
        assert.match(out, /Signature Validation: Signature is Valid\./, `${row.file}: ${out}`);
        assert.match(out, /Certificate Validation: Certificate is Trusted\./, `${row.file}: ${out}`);
      }
    }
  },
);
