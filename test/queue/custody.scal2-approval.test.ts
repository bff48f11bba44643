// SCAL2 under a tenant's approval: the approval must bind the documents' hashes, so the night prepares
// them first and they wait; the approver approves the waiting list (count and digest shown), at the
// prompt and then on the provider's page; each document is prepared again identically and sealed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import { createLogger } from '../../src/common/logger';
import { hashListDigest, totpCode } from '../../src/csc';
import { approveAtPrompt, approveOnProviderPage, ParkedApprovals } from '../../src/custody';
import { loadJobs } from '../../src/jobs';
import { readRun, runNight, type NightResult } from '../../src/queue';
import { verifySealedPdf } from '../../src/pades';
import { readManifest } from '../../src/outbox';
import { playApprover } from '../../src/demo/play-approver';
import { tempDir } from '../helpers/temp-dir';
import { testRedis } from '../helpers/test-redis';
import {
  sandboxSecret,
  sandboxSecretsDir,
  startTestSandbox,
  writeJobFile,
  writeTenantExport,
} from '../helpers/night-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

async function until(what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test(
  'SCAL2 approvals bind the waiting documents: prompt for 3, the provider page for the other 2',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const dir = await tempDir();
    const { redis, prefix, connection } = await testRedis();
    const sandbox = await startTestSandbox(dir);
    const env = { ...process.env, TEST_KEK: crypto.randomBytes(32).toString('hex') };
    await writeTenantExport(path.join(dir, 'inbox'), 'fuji', 5);
    const credentialId = 'fuji-eseal-ec-scal2';
    await writeJobFile(path.join(dir, 'jobs'), {
      tenant: 'fuji',
      credentialId,
      providerUrl: sandbox.url,
      secretsDir: sandboxSecretsDir(dir, 'fuji'),
      export: { folder: '../inbox' },
      signing: {
        custody: { mode: 'approval', via: 'prompt', kek: 'env:TEST_KEK' },
        totp: { periodSec: 1 },
        batchSize: 5,
      },
    });
    const [job] = await loadJobs(path.join(dir, 'jobs'));
    const pin = await sandboxSecret(dir, 'fuji', `${credentialId}.pin`);
    const totp = await sandboxSecret(dir, 'fuji', `${credentialId}.totp`);
    const logger = createLogger({
      level: 'warn',
      destination: pino.destination({ dest: path.join(dir, 'log'), sync: true }),
    });
    const parked = new ParkedApprovals(redis, prefix);

    const nightDone: Promise<NightResult> = runNight({
      jobs: [job!],
      connection,
      redis,
      prefix,
      logger,
      env,
      approvalPollMs: 300,
    });
    const run = async () => {
      const [id] = await redis.smembers(`${prefix}:runs`);
      return id ? readRun(redis, prefix, id) : undefined;
    };
    await until(
      '5 documents prepared and waiting',
      async () => (await parked.pending('fuji', credentialId)).length === 5,
    );
    await until('the run to count 5 awaiting', async () => (await run())?.awaitingApproval === 5);
    assert.equal((await run())?.sealed, 0);
    const waiting = (await parked.pending('fuji', credentialId)).map((p) => p.hash);

    // At the prompt: 3 of the 5, the approver shown the count and the digest of the list.
    const shown: unknown[] = [];
    const first = await approveAtPrompt({
      job: job!,
      count: 3,
      redis,
      prefix,
      logger,
      env,
      onDocuments: (...a) => shown.push(a),
      ask: async (f) => (f === 'PIN' ? pin : totpCode(totp, { period: 1 })),
    });
    assert.deepEqual(shown, [[3, hashListDigest(waiting.slice(0, 3)), 5]]);
    assert.equal(first.numSignatures, 3);
    assert.equal(first.documentsDigest, hashListDigest(waiting.slice(0, 3)));
    await until('3 sealed, 2 still waiting', async () => {
      const r = await run();
      return r?.sealed === 3 && r.awaitingApproval === 2;
    });
    assert.deepEqual(
      (await parked.pending('fuji', credentialId)).map((p) => p.hash.toString('hex')),
      waiting.slice(3).map((h) => h.toString('hex')),
    );

    // On the provider's page: the remaining 2, bound into the credential-scope token.
    await new Promise((r) => setTimeout(r, 1100)); // a fresh TOTP step
    let played: Promise<void> | undefined;
    const second = await approveOnProviderPage({
      job: job!,
      count: 10,
      redis,
      prefix,
      logger,
      env,
      timeoutMs: 30_000,
      showUrl: (url) => {
        played = playApprover(url, { pin, totpSecret: totp, totpPeriodSec: 1 });
      },
    });
    await played;
    assert.equal(second.numSignatures, 2);
    assert.equal(second.documentsDigest, hashListDigest(waiting.slice(3)));

    const night = await nightDone;
    assert.equal(night.runs[0]!.counts.sealed, 5);
    assert.equal(night.runs[0]!.counts.failed, 0);
    assert.equal(night.credentials[0]!.authorisations, 0, 'the worker never authorised');
    assert.deepEqual(await parked.pending('fuji', credentialId), []);
    const day = (await fs.readdir(path.join(dir, 'outbox', 'fuji'))).find((d) => /^\d{4}-/.test(d))!;
    const rows = await readManifest(path.join(dir, 'outbox', 'fuji', day, 'manifest.csv'));
    assert.equal(rows.length, 5);
    for (const row of rows) {
      const checks = await verifySealedPdf(
        await fs.readFile(path.join(dir, 'outbox', 'fuji', day, row.file)),
      );
      assert.ok(checks.at(-1)?.valid && checks.at(-1)?.coversWholeDocument, row.file);
    }
  },
);
