// One night for two tenants with different custody (DESIGN.md, "The problem", question 3): sakura keeps
// its factors and approves quotas at a prompt; fuji delegated its factors, kept encrypted in a vault.
// The approval runs out mid-run: sakura's invoices wait (not fail) and resume after a new approval.
// Real Redis, the sandbox; every log line, Redis value and audit entry is searched for secrets.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { createLogger } from '../../src/common/logger';
import { totpCode } from '../../src/csc';
import { approveAtPrompt, FactorVault } from '../../src/custody';
import { loadJobs } from '../../src/jobs';
import { readRun, runNight, type NightResult } from '../../src/queue';
import { auditDir, listAuditFiles, readManifest, verifyTenantAudit } from '../../src/outbox';
import { tempDir } from '../helpers/temp-dir';
import { dumpPrefix, testRedis } from '../helpers/test-redis';
import { leaks } from '../helpers/secrets';
import {
  sandboxSecret,
  sandboxSecretsDir,
  startTestSandbox,
  writeJobFile,
  writeTenantExport,
} from '../helpers/night-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

test(
  'sakura under approval and fuji with provider-held factors seal side by side; approvals run out and resume',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { redis, prefix, connection } = await testRedis();
    // Every command any client sends to Redis during the night (MONITOR): values written and later
    // deleted are searched too, not only what is left at the end.
    const monitor = await redis.monitor();
    const written: string[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args.some((a) => a.includes(prefix))) written.push(args.join(' '));
    });
    after(() => monitor.disconnect());
    const sandboxLog = path.join(dir, 'sandbox.log');
    const sandbox = await startTestSandbox(dir, { logFile: sandboxLog });
    const kekHex = crypto.randomBytes(32).toString('hex');
    const env = { ...process.env, TEST_KEK: kekHex };

    await writeTenantExport(path.join(dir, 'inbox', 'sakura'), 'sakura', 10, 'cp932');
    await writeTenantExport(path.join(dir, 'inbox', 'fuji'), 'fuji', 8, 'utf8');
    const jobsDir = path.join(dir, 'jobs');
    const job = (tenant: string, credentialId: string, custody: Record<string, unknown>, batchSize: number) =>
      writeJobFile(jobsDir, {
        tenant,
        credentialId,
        providerUrl: sandbox.url,
        secretsDir: sandboxSecretsDir(dir, tenant),
        signing: { custody, totp: { periodSec: 1 }, batchSize },
      });
    await job('sakura', 'sakura-eseal-rsa', { mode: 'approval', via: 'prompt', kek: 'env:TEST_KEK' }, 10);
    await job('fuji', 'fuji-eseal-ec', { mode: 'provider-held', vault: '../vault', kek: 'env:TEST_KEK' }, 4);
    const jobs = await loadJobs(jobsDir);
    const secrets = {
      sakuraPin: await sandboxSecret(dir, 'sakura', 'sakura-eseal-rsa.pin'),
      sakuraTotp: await sandboxSecret(dir, 'sakura', 'sakura-eseal-rsa.totp'),
      fujiPin: await sandboxSecret(dir, 'fuji', 'fuji-eseal-ec.pin'),
      fujiTotp: await sandboxSecret(dir, 'fuji', 'fuji-eseal-ec.totp'),
      sakuraClient: await sandboxSecret(dir, 'sakura', 'client-secret'),
      fujiClient: await sandboxSecret(dir, 'fuji', 'client-secret'),
    };

    // fuji hands its factors to the application provider, who keeps them encrypted.
    await new FactorVault(path.join(dir, 'vault'), Buffer.from(kekHex, 'hex')).store(
      'fuji',
      'fuji-eseal-ec',
      {
        pin: secrets.fujiPin,
        totpSecret: secrets.fujiTotp,
        totp: { digits: 6, periodSec: 1, algorithm: 'SHA1' },
      },
    );

    const logFile = path.join(dir, 'night.log');
    const logger = createLogger({
      level: 'trace',
      destination: pino.destination({ dest: logFile, sync: true }),
    });
    const sakuraJob = jobs.find((j) => j.tenant === 'sakura')!;
    // sakura's approver approves 6 seals at the prompt (typing PIN and a current OTP).
    const approve = (count: number) =>
      approveAtPrompt({
        job: sakuraJob,
        count,
        redis,
        prefix,
        logger,
        env,
        approvedBy: 'keiko.approver',
        ask: async (factor) =>
          factor === 'PIN' ? secrets.sakuraPin : totpCode(secrets.sakuraTotp, { period: 1 }),
      });
    const first = await approve(6);
    assert.equal(first.numSignatures, 6);

    const nightDone: Promise<NightResult> = runNight({
      jobs,
      connection,
      redis,
      prefix,
      logger,
      env,
      concurrency: 20,
      approvalPollMs: 300,
      batchMaxWaitMs: 300,
    });
    // Wait until sakura's six are sealed and its other four wait for an approval.
    const deadline = Date.now() + 60_000;
    let sakuraRun: Awaited<ReturnType<typeof readRun>> | undefined;
    for (;;) {
      const runIds = await redis.smembers(`${prefix}:runs`);
      const runs = await Promise.all(runIds.map((id) => readRun(redis, prefix, id)));
      sakuraRun = runs.find(
        (r) => String(r.job) === 'sakura-nightly' || String(r.runId ?? '').startsWith('sakura'),
      );
      sakuraRun ??= runs.find((_, i) => runIds[i]!.startsWith('sakura'));
      if (sakuraRun && sakuraRun.sealed === 6 && sakuraRun.awaitingApproval === 4) break;
      assert.ok(
        Date.now() < deadline,
        `sakura never reached 6 sealed + 4 awaiting: ${JSON.stringify(sakuraRun)}`,
      );
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(sakuraRun.failed, 0, 'waiting for an approval is not a failure');
    // Still waiting a moment later: nothing seals without an approval.
    await new Promise((r) => setTimeout(r, 800));
    const runIds = await redis.smembers(`${prefix}:runs`);
    const sakuraId = runIds.find((id) => id.startsWith('sakura'))!;
    assert.equal((await readRun(redis, prefix, sakuraId)).sealed, 6);

    const second = await approve(10);
    assert.equal(second.replacedUnused, 0);
    const night = await nightDone;

    const byTenant = Object.fromEntries(night.runs.map((r) => [r.tenant, r]));
    assert.equal(byTenant.sakura!.counts.sealed, 10);
    assert.equal(byTenant.sakura!.counts.failed, 0);
    assert.equal(byTenant.sakura!.counts.awaitingApproval, 0);
    assert.equal(byTenant.fuji!.counts.sealed, 8);
    const creds = Object.fromEntries(night.credentials.map((c) => [c.tenant, c]));
    assert.equal(creds.sakura!.custody, 'approval');
    assert.equal(
      creds.sakura!.authorisations,
      0,
      'the worker never authorises a tenant that keeps its factors',
    );
    assert.equal(creds.sakura!.signatures, 10);
    assert.equal(creds.sakura!.unusedSignatures, 6, 'the second approval of 10 sealed the last 4');
    assert.equal(creds.fuji!.custody, 'provider-held');
    assert.equal(creds.fuji!.authorisations, 1);
    // Batches of 4 (exact batch counts are the end-to-end test's business; here prepares trickle in).
    assert.ok(creds.fuji!.signHashCalls >= 2 && creds.fuji!.signHashCalls <= 8);
    assert.equal(creds.fuji!.signatures, 8);
    assert.equal(sandbox.stats().authorize, 3, 'two approvals at the prompt and one for fuji');

    for (const tenant of ['sakura', 'fuji']) {
      const day = (await fs.readdir(path.join(dir, 'outbox', tenant))).find((d) => /^\d{4}-/.test(d))!;
      const rows = await readManifest(path.join(dir, 'outbox', tenant, day, 'manifest.csv'));
      assert.equal(rows.length, tenant === 'sakura' ? 10 : 8);
      const audit = await verifyTenantAudit(path.join(dir, 'outbox'), tenant);
      assert.ok(audit.ok, JSON.stringify(audit));
    }
    const entries = async (tenant: string) => {
      const files = await listAuditFiles(auditDir(path.join(dir, 'outbox'), tenant));
      const lines = (await Promise.all(files.map((f) => fs.readFile(f, 'utf8')))).join('').trim().split('\n');
      return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    };
    const sakuraAudit = await entries('sakura');
    const auths = sakuraAudit.filter((e) => e.type === 'authorisation');
    assert.deepEqual(
      auths.map((e) => [e.custody, e.approvedBy, e.numSignatures]),
      [
        ['approval (prompt)', 'keiko.approver', 6],
        ['approval (prompt)', 'keiko.approver', 10],
      ],
    );
    assert.equal(sakuraAudit.filter((e) => e.type === 'seal').length, 10);
    const drawn = sakuraAudit.filter((e) => e.type === 'approval-drawn');
    assert.equal(
      drawn.reduce((n, e) => n + Number(e.count), 0),
      10,
    );
    const fujiAudit = await entries('fuji');
    assert.deepEqual(
      fujiAudit.filter((e) => e.type === 'authorisation').map((e) => e.custody),
      ['provider-held'],
    );
    assert.equal(fujiAudit.filter((e) => e.type === 'seal').length, 8);

    // No secret anywhere: logs, Redis, audit trail, vault file.
    const haystack = [
      await fs.readFile(logFile, 'utf8'),
      await fs.readFile(sandboxLog, 'utf8'),
      await dumpPrefix(redis, prefix),
      written.join('\n'),
      JSON.stringify(sakuraAudit),
      JSON.stringify(fujiAudit),
      await fs.readFile(path.join(dir, 'vault', 'fuji', 'fuji-eseal-ec.factors.json'), 'utf8'),
    ].join('\n');
    assert.ok(haystack.includes('CSC batch signed'), 'the logs were captured');
    assert.ok(
      written.some((c) => /^eval /i.test(c) && c.includes(':approval:sakura:')),
      'Redis commands were captured',
    );
    for (const [name, value] of Object.entries({ ...secrets, kek: kekHex })) {
      assert.ok(!leaks(haystack, value), `${name} leaked`);
    }
    const issued = sandbox.issuedSecrets();
    assert.ok(issued.length >= 5);
    for (const value of issued) assert.ok(!leaks(haystack, value), 'a token or SAD leaked');
  },
);
