// Custody "implicit" and the batch policy of a job definition, each over one real night (real Redis,
// the sandbox): an implicit credential is authorised with no PIN or OTP; oneDocumentPerAuthorisation
// gives every invoice its own authorisation and signHash call; maxSignaturesPerAuthorisation caps each
// SAD and the unused rest is reported; an expiry margin longer than the SAD's life re-authorises for
// every batch. Counts are asserted exactly, from the sandbox's own statistics and the NightResult.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import pino from 'pino';
import type { SandboxHandle, SandboxOptions } from '../../src/sandbox';
import { createLogger } from '../../src/common/logger';
import { loadJobs } from '../../src/jobs';
import { runNight, type NightResult } from '../../src/queue';
import { auditDir, listAuditFiles, readManifest, verifyTenantAudit } from '../../src/outbox';
import { tempDir } from '../helpers/temp-dir';
import { dumpPrefix, testRedis } from '../helpers/test-redis';
import { nssDbWithRoot, pdfsig } from '../helpers/pdfsig';
import {
  factorFileRefs,
  sandboxSecretsDir,
  startTestSandbox,
  writeJobFile,
  writeTenantExport,
} from '../helpers/night-fixture';
import { TEST_TIMEOUT_MS } from '../helpers/timeouts';

interface Night {
  dir: string;
  sandbox: SandboxHandle;
  night: NightResult;
  logFile: string;
  redisDump: string;
}

/**
 * Seals `count` sakura invoices with `signing` (merged over the service authentication) in one night.
 * All jobs are queued at once and the batch signer waits long for a full batch, so batches are full
 * but for the last. Both of its waits are long: with the default 500 ms cap on a partial batch's age,
 * a loaded machine (prepares that straggle in) split a batch and the exact call counts failed.
 */
async function sealNight(o: {
  count: number;
  signing: Record<string, unknown>;
  sandbox?: Partial<SandboxOptions>;
}): Promise<Night> {
  const dir = await tempDir();
  const { redis, prefix, connection } = await testRedis();
  const sandbox = await startTestSandbox(dir, o.sandbox);
  await writeTenantExport(path.join(dir, 'inbox', 'sakura'), 'sakura', o.count);
  const jobsDir = path.join(dir, 'jobs');
  const { credentialId, ...signing } = o.signing;
  await writeJobFile(jobsDir, {
    tenant: 'sakura',
    credentialId: credentialId as string,
    providerUrl: sandbox.url,
    secretsDir: sandboxSecretsDir(dir, 'sakura'),
    signing,
  });
  const jobs = await loadJobs(jobsDir);
  const logFile = path.join(dir, 'night.log');
  const logger = createLogger({
    level: 'trace',
    destination: pino.destination({ dest: logFile, sync: true }),
  });
  sandbox.resetStats();
  const night = await runNight({
    jobs,
    connection,
    redis,
    prefix,
    logger,
    concurrency: 2 * o.count,
    batchMaxWaitMs: 5_000,
    batchMaxDelayMs: 5_000,
    timeoutMs: 120_000,
  });
  return { dir, sandbox, night, logFile, redisDump: await dumpPrefix(redis, prefix) };
}

function only<T>(items: T[]): T {
  assert.equal(items.length, 1, JSON.stringify(items));
  return items[0]!;
}

async function auditEntries(outboxRoot: string, tenant: string): Promise<Record<string, unknown>[]> {
  const files = await listAuditFiles(auditDir(outboxRoot, tenant));
  const text = (await Promise.all(files.map((f) => fs.readFile(f, 'utf8')))).join('');
  return text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test(
  'custody implicit seals a night on sakura-eseal-implicit with authorisations that carry no PIN or OTP',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const N = 12;
    const BATCH = 5;
    const { dir, sandbox, night, logFile, redisDump } = await sealNight({
      count: N,
      signing: {
        credentialId: 'sakura-eseal-implicit',
        custody: { mode: 'implicit' },
        batchSize: BATCH,
      },
    });
    const run = only(night.runs);
    assert.deepEqual(
      { sealed: run.counts.sealed, failed: run.counts.failed },
      { sealed: N, failed: 0 },
      JSON.stringify(run.failures),
    );
    const cred = only(night.credentials);
    assert.deepEqual(
      {
        credentialId: cred.credentialId,
        custody: cred.custody,
        oneDocumentPerAuthorisation: cred.oneDocumentPerAuthorisation,
        authorisations: cred.authorisations,
        signHashCalls: cred.signHashCalls,
        signatures: cred.signatures,
        unusedSignatures: cred.unusedSignatures,
      },
      {
        credentialId: 'sakura-eseal-implicit',
        custody: 'implicit',
        oneDocumentPerAuthorisation: false,
        // One SAD covers the night, sized to the N invoices queued (not multisign's 500: providers
        // may bill what is authorised).
        authorisations: 1,
        signHashCalls: Math.ceil(N / BATCH),
        signatures: N,
        unusedSignatures: 0,
      },
    );
    // The sandbox refuses authData for an implicit credential (400), so an authorisation it granted,
    // with no error answered at all, is one that carried no PIN and no OTP.
    const stats = sandbox.stats();
    assert.equal(stats.authorize, 1);
    assert.equal(stats.errors, 0);
    assert.equal(stats.signHash, Math.ceil(N / BATCH));
    assert.equal(stats.signatures, N);
    const implicitCred = sandbox.credentials.find((c) => c.credentialId === 'sakura-eseal-implicit')!;
    assert.equal(implicitCred.authMode, 'implicit');

    // The sealed PDFs are where finance looks for them, and pdfsig trusts them with the sandbox root.
    const outDir = path.join(dir, 'outbox', 'sakura', run.produced.runDate);
    const manifest = await readManifest(path.join(outDir, 'manifest.csv'));
    assert.equal(manifest.length, N);
    for (const row of manifest) {
      assert.ok((await fs.stat(path.join(outDir, row.file))).size > 0, row.file);
    }
    const sealedPdfs = (await fs.readdir(outDir)).filter((f) => f.endsWith('.pdf'));
    assert.equal(sealedPdfs.length, N);
    const out = await pdfsig(path.join(outDir, sealedPdfs[0]!), await nssDbWithRoot(sandbox.rootCertPath));
    assert.match(out, /Signature Validation: Signature is Valid\./, out);

    // The audit trail names the custody model; no SAD or token reached logs, Redis or the audit trail.
    const audit = await auditEntries(path.join(dir, 'outbox'), 'sakura');
    assert.deepEqual(
      audit.filter((e) => e.type === 'authorisation').map((e) => [e.custody, e.numSignatures]),
      [['implicit', N]],
    );
    assert.equal(audit.filter((e) => e.type === 'seal').length, N);
    assert.ok((await verifyTenantAudit(path.join(dir, 'outbox'), 'sakura')).ok);
    const haystack = [await fs.readFile(logFile, 'utf8'), redisDump, JSON.stringify(audit)].join('\n');
    for (const value of sandbox.issuedSecrets())
      assert.ok(!haystack.includes(value), 'a token or SAD leaked');
  },
);

test(
  'oneDocumentPerAuthorisation: every invoice gets its own authorisation and its own signHash call',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const N = 4;
    const { sandbox, night } = await sealNight({
      count: N,
      signing: await secretRefsSigning({ oneDocumentPerAuthorisation: true, batchSize: 10 }),
    });
    const run = only(night.runs);
    assert.equal(run.counts.sealed, N, JSON.stringify(run.failures));
    const cred = only(night.credentials);
    assert.equal(cred.custody, 'secret-refs');
    assert.equal(cred.oneDocumentPerAuthorisation, true);
    assert.deepEqual(
      [cred.authorisations, cred.signHashCalls, cred.signatures, cred.unusedSignatures],
      [N, N, N, 0],
    );
    const stats = sandbox.stats();
    assert.deepEqual([stats.authorize, stats.signHash, stats.signatures], [N, N, N]);
  },
);

test(
  'maxSignaturesPerAuthorisation 3 with batches of 3: 7 invoices take 3 authorisations, the last sized to what is left',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const { dir, sandbox, night } = await sealNight({
      count: 7,
      signing: await secretRefsSigning({ maxSignaturesPerAuthorisation: 3, batchSize: 3 }),
    });
    const run = only(night.runs);
    assert.equal(run.counts.sealed, 7, JSON.stringify(run.failures));
    const cred = only(night.credentials);
    // Batches 3 + 3 + 1 (all queued at once, full batches first), each under an authorisation of its own:
    // each asks for the invoices still queued, capped at 3, and at least its batch; what the last one
    // asked beyond its one invoice is unused (how many were still counted as queued depends on timing).
    const asked = (await auditEntries(path.join(dir, 'outbox'), 'sakura'))
      .filter((e) => e.type === 'authorisation')
      .map((e) => e.numSignatures as number);
    assert.deepEqual(asked.slice(0, 2), [3, 3]);
    assert.ok(asked[2]! >= 1 && asked[2]! <= 3, JSON.stringify(asked));
    assert.deepEqual(
      {
        signHashCalls: cred.signHashCalls,
        authorisations: cred.authorisations,
        signatures: cred.signatures,
        unusedSignatures: cred.unusedSignatures,
      },
      { signHashCalls: 3, authorisations: 3, signatures: 7, unusedSignatures: asked[2]! - 1 },
    );
    const stats = sandbox.stats();
    assert.deepEqual([stats.authorize, stats.signHash, stats.signatures], [3, 3, 7]);
  },
);

test(
  'an expiry margin longer than the SAD lifetime makes every batch authorise again',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const N = 6;
    const BATCH = 2;
    const { dir, sandbox, night } = await sealNight({
      count: N,
      // The sandbox's SADs live 2 s; the job will not reuse one with less than 10 s left.
      sandbox: { sadLifetimeSec: 2 },
      signing: await secretRefsSigning({ sadExpiryMarginSec: 10, batchSize: BATCH }),
    });
    const run = only(night.runs);
    assert.equal(run.counts.sealed, N, JSON.stringify(run.failures));
    const cred = only(night.credentials);
    assert.equal(cred.signHashCalls, N / BATCH);
    assert.equal(cred.authorisations, cred.signHashCalls, 'one authorisation per batch');
    // Each SAD is given up after one batch: what it had left is reported as unused, since the provider
    // authorised it all the same. Each asked for the invoices still queued then, never multisign's 500.
    const asked = (await auditEntries(path.join(dir, 'outbox'), 'sakura'))
      .filter((e) => e.type === 'authorisation')
      .map((e) => e.numSignatures as number);
    assert.equal(asked.length, N / BATCH);
    assert.ok(
      asked.every((n) => n >= BATCH && n <= N),
      JSON.stringify(asked),
    );
    assert.equal(cred.unusedSignatures, asked.reduce((a, b) => a + b, 0) - N);
    const stats = sandbox.stats();
    assert.equal(stats.authorize, stats.signHash);
    assert.equal(stats.signHash, N / BATCH);
    assert.equal(stats.signatures, N);
  },
);

/** Job signing for sakura-eseal-rsa with custody secret-refs: PIN and TOTP secret from the sandbox files. */
async function secretRefsSigning(extra: Record<string, unknown>): Promise<Record<string, unknown>> {
  return {
    credentialId: 'sakura-eseal-rsa',
    custody: { mode: 'secret-refs' },
    // Relative to the job file (jobs/), like every path in a job definition.
    ...factorFileRefs('../sandbox/secrets/sakura', 'sakura-eseal-rsa'),
    totp: { periodSec: 1 },
    ...extra,
  };
}
